package web

import (
	"embed"
	"io/fs"
)

//go:embed console/*.html
var consoleFiles embed.FS

// ConsoleTemplates holds the operator console's page templates (console/*.html),
// for package console to parse with its own functions, after ParseFrame's
// shared parts. Their assets (base.css, console.css and the shared
// app.js) are among Static's.
func ConsoleTemplates() fs.FS {
	sub, err := fs.Sub(consoleFiles, "console")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return sub
}
