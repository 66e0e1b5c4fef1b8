package laburenredis_test

import (
	"context"
	"net/http"
	"time"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/laburenredis"
	"github.com/redis/go-redis/v9"
)

// A webhook receiver on several replicas, each with the same Redis: every delivery reaches
// handle once across all of them.
func Example() {
	secret := []byte("load-32-random-bytes-from-config")
	handle := func(ctx context.Context, ev *laburen.WebhookEvent) error { return nil }

	// README redis store
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	handler := laburen.NewWebhookHandler(handle,
		laburen.WithWebhookSecret(secret),
		laburen.WithWebhookDeduplicator(laburenredis.New(rdb, laburenredis.WithClaimTTL(time.Minute))),
	)
	// README end
	http.Handle("/webhook/laburen", handler)
}
