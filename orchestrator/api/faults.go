package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/faults"
)

// Faulter injects and reverts faults; *faults.Injector is one.
type Faulter interface {
	// InjectFault applies a fault to owned replicas. The error wraps
	// controller.ErrNotFound for an unknown group or replica,
	// faults.ErrInvalid for a bad request, controller.ErrConflict
	// when no replica can take it.
	InjectFault(ctx context.Context, s faults.Spec) (faults.Fault, error)
	// Faults lists the faults in force, newest first.
	Faults() []faults.Fault
	// RevertFault undoes a fault; controller.ErrNotFound if unknown.
	RevertFault(ctx context.Context, id string) (faults.Fault, error)
}

// FaultsResponse is the body of GET /api/v1/faults.
type FaultsResponse struct {
	Faults []faults.Fault `json:"faults"`
}

const faultFields = `a fault takes "kind" (kill, pause, crash-feature, latency, errors, partition, poison, slow-consumer), "group", and optional "replica", "feature", "latencyMs", "errorRate" and "messages"`

func (s *server) injectFault(c *gin.Context) {
	var req faults.Spec
	if !s.decode(c, &req, true, faultFields) {
		return
	}
	f, err := s.faults.InjectFault(c.Request.Context(), req)
	if err != nil {
		s.failFault(c, err)
		return
	}
	c.JSON(http.StatusCreated, f)
}

func (s *server) listFaults(c *gin.Context) {
	c.JSON(http.StatusOK, FaultsResponse{Faults: s.faults.Faults()})
}

func (s *server) revertFault(c *gin.Context) {
	f, err := s.faults.RevertFault(c.Request.Context(), c.Param("id"))
	if err != nil {
		s.failFault(c, err)
		return
	}
	c.JSON(http.StatusOK, f)
}

func (s *server) failFault(c *gin.Context, err error) {
	switch {
	case errors.Is(err, faults.ErrInvalid):
		abort(c, http.StatusBadRequest, err.Error()+"; "+faultFields)
	case errors.Is(err, controller.ErrNotFound):
		abort(c, http.StatusNotFound, err.Error())
	case errors.Is(err, controller.ErrConflict):
		abort(c, http.StatusConflict, err.Error())
	default:
		s.fail(c, "", err)
	}
}
