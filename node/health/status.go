package health

import "time"

// Status is the health of one container, as reported to the leader and
// shown by the API and the UI.
type Status string

// The statuses a check can report.
const (
	// StatusHealthy: the container answers and logged no error line.
	StatusHealthy Status = "healthy"
	// StatusDegraded: the container answers but logged an error line since
	// the previous check. The leader does not restart it for this.
	StatusDegraded Status = "degraded"
	// StatusUnhealthy: no answer, not running, or a cron job that failed,
	// missed a run or runs too long. Three in a row make the leader restart it.
	StatusUnhealthy Status = "unhealthy"
	// StatusStarting: the check failed within the start grace the caller
	// gave; it does not count towards a restart.
	StatusStarting Status = "starting"
)

// Valid reports whether s is one of the four statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusHealthy, StatusDegraded, StatusUnhealthy, StatusStarting:
		return true
	}
	return false
}

// Result is the answer of one check. Its JSON form is the seed-compatible
// health answer of `GET /v1/containers/{name}/health`.
type Result struct {
	Status    Status    `json:"status"`
	Reason    string    `json:"reason"`
	CheckedAt time.Time `json:"checked_at"`
}
