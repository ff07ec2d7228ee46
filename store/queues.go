package store

import (
	"context"
	"time"
)

// QueueCountCap bounds the counts QueueStats reads: a count is a walk of
// the index, so a queue grown past it reads as QueueCountCap ("at least").
const QueueCountCap = 10000

// Queue is what waits in one outbound queue.
type Queue struct {
	// Pending is how many orders wait, up to QueueCountCap.
	Pending int
	// Oldest is when the oldest waiting order was recorded; zero when
	// none waits.
	Oldest time.Time
}

// QueueStats is what waits in the outbound queues, across all nodes and
// tenants: revocations not yet applied to the session store, back-channel
// logouts and webhook deliveries not yet delivered (pending or failed and
// due again; dead ones wait for no one).
type QueueStats struct {
	Revocations Queue
	Logouts     Queue
	Deliveries  Queue
}

// queueStatsSQL reads the three queues in one round trip, each part a
// bounded walk of an index (migration 0106): the scrape of /metrics must
// stay cheap however long a queue grows while Redis or a receiver is down.
const queueStatsSQL = `SELECT
	(SELECT count(*) FROM (SELECT 1 FROM revocations LIMIT $1) r),
	(SELECT min(created_at) FROM revocations),
	(SELECT count(*) FROM (SELECT 1 FROM logouts WHERE status IN ('pending', 'failed') LIMIT $1) l),
	(SELECT min(created_at) FROM logouts WHERE status IN ('pending', 'failed')),
	(SELECT count(*) FROM (SELECT 1 FROM deliveries WHERE status IN ('pending', 'failed') LIMIT $1) d),
	(SELECT min(created_at) FROM deliveries WHERE status IN ('pending', 'failed'))`

// QueueStats reads what waits in the outbound queues (global), for the
// gauges of /metrics.
func (db *DB) QueueStats(ctx context.Context) (QueueStats, error) {
	var s QueueStats
	var oldest [3]*time.Time
	err := db.global(ctx, false, func(q querier) error {
		return q.queryRow(ctx, queueStatsSQL, QueueCountCap).Scan(
			&s.Revocations.Pending, nullTimeDest{&oldest[0]},
			&s.Logouts.Pending, nullTimeDest{&oldest[1]},
			&s.Deliveries.Pending, nullTimeDest{&oldest[2]})
	})
	for i, q := range []*Queue{&s.Revocations, &s.Logouts, &s.Deliveries} {
		if oldest[i] != nil {
			q.Oldest = *oldest[i]
		}
	}
	return s, db.wrap("queue stats", err)
}
