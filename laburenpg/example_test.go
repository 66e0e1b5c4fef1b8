package laburenpg_test

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/laburenpg"
)

// A webhook receiver on several replicas, each with the same PostgreSQL database: every
// delivery reaches the function once across all of them, and its effect commits with the
// record that it was handled.
func Example() {
	if err := serve(context.Background(), []byte("load-32-random-bytes-from-config")); err != nil {
		fmt.Println(err)
	}
}

func serve(ctx context.Context, secret []byte) error {
	// README postgres store
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	dedup, err := laburenpg.New(ctx, pool) // creates its table when missing
	if err != nil {
		return err
	}
	handler := laburen.NewWebhookHandler(func(ctx context.Context, ev *laburen.WebhookEvent) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			// ... store the answer with tx ...
			return dedup.DoneTx(ctx, tx) // the effect and its record commit together
		})
	}, laburen.WithWebhookSecret(secret), laburen.WithWebhookDeduplicator(dedup))
	// README end
	http.Handle("/webhook/laburen", handler)
	return nil
}
