package portal

import "github.com/labstack/echo/v4"

func (p *Portal) mountDirectories(s *echo.Group) {}
