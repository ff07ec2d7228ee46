package portal

import "github.com/labstack/echo/v4"

func (p *Portal) mountLogs(s *echo.Group) {}
