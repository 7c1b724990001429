// Package admin is Gannet's administration endpoint: health checks,
// Prometheus metrics, a JSON API over the broker's introspection calls, and
// a dashboard page that uses that API.
//
// The core type is Admin, made by New from a running *broker.Server. Its
// Handler is served by the caller on a listener of its own (ListenAndServe
// and Serve do that for the simple case):
//
//	GET    /healthz                      the process is alive (no token needed)
//	GET    /readyz                       the broker is serving (no token needed)
//	GET    /metrics                      Prometheus text format
//	GET    /api/v1/stats                 broker.Stats as JSON
//	GET    /api/v1/clients?q=&limit=     sessions; q is a substring of id, username or address
//	GET    /api/v1/clients/{id}          one session and its subscriptions
//	DELETE /api/v1/clients/{id}          disconnect; ?discard=true ends the session too
//	GET    /api/v1/subscriptions         every subscription
//	GET    /api/v1/topics?limit=         topic filters with the most subscribers
//	GET    /api/v1/retained?filter=#     retained messages whose topics match filter
//	DELETE /api/v1/retained/{topic...}   delete a retained message (or ?topic=)
//	POST   /api/v1/publish               {"topic", "payload" | "payload_base64", "qos", "retain"}
//	GET    /api/v1/cluster               broker.ClusterStatus: nodes, JetStream streams and replicas (404 on a single node)
//	GET    /                             the dashboard
//
// With Options.Token set, every endpoint but the health checks and the
// dashboard's static files asks for "Authorization: Bearer TOKEN". The
// dashboard page holds no data: it asks for the token and sends it with
// each API call. Errors are JSON objects {"error": "..."}.
//
// On a clustered node every metric carries the label node="NAME", and the
// dashboard has a Cluster panel.
//
// MeteredStore wraps a store.Store so that the time of each call shows in
// the metrics as gannet_store_operation_seconds.
package admin
