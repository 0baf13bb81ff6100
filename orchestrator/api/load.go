package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/load"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// LoadsResponse is the body of GET /api/v1/load.
type LoadsResponse struct {
	Runs []load.Report `json:"runs"`
}

const loadFields = `a load run takes "group" (or "target"/"targets" on 127.0.0.1), and optional "journey" (true: shoppers browse, view deals, add to cart and check out), "rate", "concurrency", "duration" ("30s"), "maxRequests", "paths", "method", "body", "shoppers", "timeout" and "headers"`

// startLoad answers POST /api/v1/load. The body is a load spec (see package
// load) plus "group", which aims it at the group's balancer, or, for a group
// without one, at its replicas, each shopper pinned to one of them.
func (s *server) startLoad(c *gin.Context) {
	var raw map[string]json.RawMessage
	if !s.decode(c, &raw, true, loadFields) {
		return
	}
	var group string
	if g, ok := raw["group"]; ok {
		if err := json.Unmarshal(g, &group); err != nil {
			abortInvalid(c, &spec.ValidationError{Field: "group", Reason: "must be a group name (a string)"})
			return
		}
		delete(raw, "group")
	}
	rest, _ := json.Marshal(raw)
	var ls load.Spec
	dec := json.NewDecoder(bytes.NewReader(rest))
	if err := dec.Decode(&ls); err != nil && !errors.Is(err, io.EOF) {
		var ve *load.ValidationError
		if errors.As(err, &ve) {
			abortInvalid(c, &spec.ValidationError{Field: ve.Field, Reason: ve.Reason})
			return
		}
		abort(c, http.StatusBadRequest, fmt.Sprintf("%v; %s", err, loadFields))
		return
	}
	if group != "" {
		if ls.Target != "" || len(ls.Targets) > 0 {
			abortInvalid(c, &spec.ValidationError{Field: "group", Reason: `give either "group" or "target"/"targets", not both`})
			return
		}
		st, err := s.ctl.Group(group)
		if err != nil {
			s.fail(c, group, err)
			return
		}
		switch {
		case st.Endpoint != "":
			ls.Target = st.Endpoint
		default:
			for _, r := range st.Replicas {
				if r.Address != "" && r.State == "running" {
					ls.Targets = append(ls.Targets, r.Address)
				}
			}
			if len(ls.Targets) == 0 {
				abort(c, http.StatusConflict, fmt.Sprintf("group %q has no balancer and no running replica to send load to", group))
				return
			}
		}
	} else if ls.Target == "" && len(ls.Targets) == 0 {
		abortInvalid(c, &spec.ValidationError{Field: "group", Reason: "is required: the group to send load to"})
		return
	}
	rep, err := s.load.Start(ls)
	if err != nil {
		s.failLoad(c, err)
		return
	}
	c.JSON(http.StatusCreated, rep)
}

func (s *server) listLoad(c *gin.Context) {
	runs := s.load.List()
	if runs == nil {
		runs = []load.Report{}
	}
	c.JSON(http.StatusOK, LoadsResponse{Runs: runs})
}

func (s *server) getLoad(c *gin.Context) {
	rep, err := s.load.Get(c.Param("id"))
	if err != nil {
		s.failLoad(c, err)
		return
	}
	c.JSON(http.StatusOK, rep)
}

func (s *server) stopLoad(c *gin.Context) {
	rep, err := s.load.Stop(c.Param("id"))
	if err != nil {
		s.failLoad(c, err)
		return
	}
	c.JSON(http.StatusOK, rep)
}

func (s *server) failLoad(c *gin.Context, err error) {
	var ve *load.ValidationError
	switch {
	case errors.As(err, &ve):
		abortInvalid(c, &spec.ValidationError{Field: ve.Field, Reason: ve.Reason})
	case errors.Is(err, load.ErrNotFound):
		abort(c, http.StatusNotFound, err.Error()+": list runs with GET /api/v1/load")
	case errors.Is(err, load.ErrBusy):
		abort(c, http.StatusConflict, err.Error())
	case errors.Is(err, load.ErrInvalid):
		abort(c, http.StatusBadRequest, err.Error())
	case errors.Is(err, controller.ErrNotFound):
		abort(c, http.StatusNotFound, err.Error())
	default:
		abort(c, http.StatusInternalServerError, "load generator failed: "+err.Error())
	}
}
