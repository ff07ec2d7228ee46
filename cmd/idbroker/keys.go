package main

import (
	"context"
	"errors"
)

func runAPIKey(ctx context.Context, c *cli, args []string) error {
	return errors.New("not wired yet")
}

func runKeys(ctx context.Context, c *cli, args []string) error {
	return errors.New("not wired yet")
}
