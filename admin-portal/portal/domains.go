package portal

import "github.com/labstack/echo/v4"

func (p *Portal) mountDomains(s *echo.Group) {}
