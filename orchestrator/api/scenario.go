package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/flotilla/flotilla/orchestrator/spec"
)

// ScenariosResponse is the body of GET /api/v1/scenarios.
type ScenariosResponse struct {
	Scenarios []spec.Scenario `json:"scenarios"`
	Current   string          `json:"current"`
}

// ScenarioRequest is the body of PUT /api/v1/scenario.
type ScenarioRequest struct {
	Name string `json:"name"`
}

func (s *server) listScenarios(c *gin.Context) {
	list := s.scenarios
	if list == nil {
		list = []spec.Scenario{}
	}
	c.JSON(http.StatusOK, ScenariosResponse{Scenarios: list, Current: s.ctl.Scenario()})
}

func (s *server) currentScenario(c *gin.Context) {
	name := s.ctl.Scenario()
	for _, sc := range s.scenarios {
		if sc.Name == name {
			c.JSON(http.StatusOK, sc)
			return
		}
	}
	abort(c, http.StatusNotFound, "no scenario applied yet: pick one with PUT /api/v1/scenario {\"name\": ...}")
}

func (s *server) applyScenario(c *gin.Context) {
	var req ScenarioRequest
	if !s.decode(c, &req, true, `a scenario request takes only "name"`) {
		return
	}
	var names []string
	for _, sc := range s.scenarios {
		if sc.Name == req.Name {
			for _, g := range sc.Groups {
				if ve := s.checkPorts(g, fmt.Sprintf("group %s of scenario %s: ", g.Name, sc.Name)); ve != nil {
					abortInvalid(c, ve)
					return
				}
			}
			res, err := s.ctl.ApplyScenario(c.Request.Context(), sc)
			if err != nil {
				s.fail(c, "", err)
				return
			}
			c.JSON(http.StatusOK, res)
			return
		}
		names = append(names, sc.Name)
	}
	if req.Name == "" {
		abortInvalid(c, &spec.ValidationError{Field: "name", Reason: "is required: one of " + strings.Join(names, ", ")})
		return
	}
	abort(c, http.StatusNotFound, fmt.Sprintf("no scenario %q: one of %s", req.Name, strings.Join(names, ", ")))
}
