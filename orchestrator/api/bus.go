package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/flotilla/flotilla/orchestrator/bus"
)

// Bus is the shop's message bus as the controller reads it; the controller
// satisfies it, tests hand in a fake.
type Bus interface {
	// BusStatus is the last reading of the bus: Up false with Error saying
	// why when no bus runs or it cannot be read.
	BusStatus() bus.Status
	// ReplayDeadLetter publishes dead letter seq's message again to its
	// subject and deletes the dead letter. The error wraps bus.ErrNotFound
	// for no such dead letter, bus.ErrUnavailable when no bus can be reached.
	ReplayDeadLetter(ctx context.Context, seq uint64) (bus.ReplayResult, error)
}

const replayFields = "a replay takes no fields"

// getBus answers GET /api/v1/bus. A bus that does not run is a 200 with
// "up": false and the reason: the reading itself succeeded.
func (s *server) getBus(c *gin.Context) {
	c.JSON(http.StatusOK, emptyBusLists(s.bus.BusStatus()))
}

// replayDeadLetter answers POST /api/v1/bus/deadletters/:seq/replay.
func (s *server) replayDeadLetter(c *gin.Context) {
	raw := c.Param("seq")
	seq, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || seq == 0 {
		abort(c, http.StatusBadRequest, fmt.Sprintf("dead letter %q is not a sequence number: name a dead letter by its seq (1 or more), as GET /api/v1/bus lists them", raw))
		return
	}
	var req struct{}
	if !s.decode(c, &req, false, replayFields) {
		return
	}
	res, err := s.bus.ReplayDeadLetter(c.Request.Context(), seq)
	switch {
	case err == nil:
		c.JSON(http.StatusOK, res)
	case errors.Is(err, bus.ErrNotFound):
		abort(c, http.StatusNotFound, err.Error()+"; list the dead letters with GET /api/v1/bus")
	case errors.Is(err, bus.ErrUnavailable):
		abort(c, http.StatusServiceUnavailable, err.Error())
	default:
		s.fail(c, "", err)
	}
}

// emptyBusLists makes absent lists [] so clients can range over them.
func emptyBusLists(st bus.Status) bus.Status {
	if st.Streams == nil {
		st.Streams = []bus.Stream{}
	}
	for i := range st.Streams {
		if st.Streams[i].Consumers == nil {
			st.Streams[i].Consumers = []bus.Consumer{}
		}
		if st.Streams[i].Subjects == nil {
			st.Streams[i].Subjects = []string{}
		}
	}
	if st.Dead == nil {
		st.Dead = []bus.DeadLetter{}
	}
	return st
}
