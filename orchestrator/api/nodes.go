package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/replica"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// NodeRequest is the body of PUT /api/v1/nodes/:id.
type NodeRequest struct {
	// Availability is "active" (takes new replicas), "pause" (keeps its
	// replicas, takes no new ones) or "drain" (its replicas move to other
	// nodes).
	Availability *string `json:"availability"`
}

const nodeFields = `a node takes only "availability": "active", "pause" or "drain"`

// maxNodeRef bounds a node's ID or name in the path: a swarm node's ID is
// 25 characters, a host name at most 253.
const maxNodeRef = 253

// getNodes answers GET /api/v1/nodes.
func (s *server) getNodes(c *gin.Context) {
	st, err := s.ctl.Nodes(c.Request.Context())
	if errors.Is(err, controller.ErrNodesUnread) {
		abort(c, http.StatusServiceUnavailable, err.Error()+"; try again in a moment")
		return
	}
	if err != nil {
		s.fail(c, "", err)
		return
	}
	c.JSON(http.StatusOK, emptyNodeLists(st))
}

// putNode answers PUT /api/v1/nodes/:id: a node's availability.
func (s *server) putNode(c *gin.Context) {
	id := c.Param("id")
	if !validNodeRef(id) {
		abortInvalid(c, &spec.ValidationError{Field: "id", Reason: fmt.Sprintf("%.40q is not a node's ID or name: letters, digits, dots, dashes and underscores, at most %d; list the nodes with GET /api/v1/nodes", id, maxNodeRef)})
		return
	}
	var req NodeRequest
	if !s.decode(c, &req, true, nodeFields) {
		return
	}
	if req.Availability == nil {
		abortInvalid(c, &spec.ValidationError{Field: "availability", Reason: `is required: send {"availability": "active"}, "pause" or "drain"`})
		return
	}
	if a := *req.Availability; !replica.ValidAvailability(a) {
		abortInvalid(c, &spec.ValidationError{Field: "availability", Reason: fmt.Sprintf(
			"%.40q is not a node availability: one of active (takes new replicas), pause (keeps its replicas, takes no new ones), drain (moves its replicas to other nodes)", a)})
		return
	}
	n, err := s.ctl.SetNodeAvailability(c.Request.Context(), id, *req.Availability)
	switch {
	case err == nil:
		if n.Replicas == nil {
			n.Replicas = []controller.NodeReplica{}
		}
		c.JSON(http.StatusOK, n)
	case errors.Is(err, controller.ErrNotSwarm):
		abort(c, http.StatusConflict, fmt.Sprintf("node %q: this controller runs the %s runtime, one local engine with nothing to drain: %s", id, s.ctl.RuntimeName(), controller.ErrNotSwarm))
	case errors.Is(err, replica.ErrNotFound), errors.Is(err, controller.ErrNotFound):
		abort(c, http.StatusNotFound, fmt.Sprintf("node %q not found: name a node by its ID or name, as GET /api/v1/nodes lists them", id))
	default:
		s.fail(c, "", err)
	}
}

// validNodeRef reports whether ref can be a node's ID or host name.
func validNodeRef(ref string) bool {
	if ref == "" || len(ref) > maxNodeRef {
		return false
	}
	return strings.IndexFunc(ref, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_')
	}) < 0
}

// emptyNodeLists makes absent lists [] so clients can range over them.
func emptyNodeLists(st controller.NodesStatus) controller.NodesStatus {
	if st.Nodes == nil {
		st.Nodes = []controller.NodeStatus{}
	}
	for i := range st.Nodes {
		if st.Nodes[i].Replicas == nil {
			st.Nodes[i].Replicas = []controller.NodeReplica{}
		}
	}
	return st
}
