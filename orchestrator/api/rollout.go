package api

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// RolloutsResponse is the body of GET /api/v1/groups/:name/rollouts: a
// group's rollouts and the revisions it ran, newest first.
type RolloutsResponse struct {
	Rollouts  []controller.RolloutStatus `json:"rollouts"`
	Revisions []controller.Revision      `json:"revisions"`
}

// RollbackRequest is the optional body of POST
// /api/v1/groups/:name/rollback. Revision 0, or no body, means the revision
// before the current one (the one a running or failed rollout started from).
type RollbackRequest struct {
	Revision int `json:"revision,omitempty"`
}

const (
	rollbackFields = `a rollback takes only an optional "revision" (a revision number from the group's rollout history; leave it out for the one before)`
	pauseFields    = `pause and resume take no fields`
)

// rollouts answers GET /api/v1/groups/:name/rollouts.
func (s *server) rollouts(c *gin.Context) {
	name, ok := groupName(c)
	if !ok {
		return
	}
	ros, revs, err := s.ctl.Rollouts(name)
	if err != nil {
		s.fail(c, name, err)
		return
	}
	if ros == nil {
		ros = []controller.RolloutStatus{}
	}
	if revs == nil {
		revs = []controller.Revision{}
	}
	c.JSON(http.StatusOK, RolloutsResponse{Rollouts: ros, Revisions: revs})
}

// rollback answers POST /api/v1/groups/:name/rollback with the rollout
// that takes the group back.
func (s *server) rollback(c *gin.Context) {
	name, ok := groupName(c)
	if !ok {
		return
	}
	var req RollbackRequest
	if !s.decode(c, &req, false, rollbackFields) {
		return
	}
	if req.Revision < 0 {
		abortInvalid(c, &spec.ValidationError{Field: "revision", Reason: fmt.Sprintf("%d is not a revision: revisions count from 1; leave it out for the one before", req.Revision)})
		return
	}
	st, err := s.ctl.Rollback(c.Request.Context(), name, req.Revision, "")
	if err != nil {
		s.fail(c, name, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

// pauseRollout answers POST /api/v1/groups/:name/rollout/pause (pause) and
// .../resume with the rollout as it is now.
func (s *server) pauseRollout(pause bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		name, ok := groupName(c)
		if !ok {
			return
		}
		var req struct{}
		if !s.decode(c, &req, false, pauseFields) {
			return
		}
		st, err := s.ctl.PauseRollout(name, pause)
		if err != nil {
			s.fail(c, name, err)
			return
		}
		c.JSON(http.StatusOK, st)
	}
}

// supersedeParam reads PUT's ?supersede=true, which lets a template change
// end a running rollout instead of being refused with 409.
func supersedeParam(c *gin.Context) (bool, bool) { return boolParam(c, "supersede") }

// boolParam reads the query parameter name as a yes or no: absent is no,
// present without a value is yes; anything but true or false is a 400
// naming it.
func boolParam(c *gin.Context, name string) (bool, bool) {
	raw, sent := c.GetQuery(name)
	if !sent {
		return false, true
	}
	if raw == "" {
		return true, true // "?supersede" alone says yes
	}
	v, err := strconv.ParseBool(raw)
	if err != nil {
		abortInvalid(c, &spec.ValidationError{Field: name, Reason: fmt.Sprintf("%q is not true or false", raw)})
		return false, false
	}
	return v, true
}
