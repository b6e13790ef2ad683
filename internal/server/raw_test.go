package server_test

import (
	"context"
	"log/slog"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/server"
)

func startRaw(cfg *config.Config) (*server.Server, error) {
	return server.Start(context.Background(), server.Options{Config: cfg, Logger: slog.New(slog.DiscardHandler)})
}
