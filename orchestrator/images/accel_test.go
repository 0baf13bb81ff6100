package images_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/orchestrator/images"
	"github.com/flotilla/flotilla/orchestrator/images/imagestest"
)

// vmSource returns the source root, or skips (fails under
// FLOTILLA_REQUIRE_VM=1) when this machine cannot boot guests.
func vmSource(t *testing.T) string {
	t.Helper()
	return imagestest.VMSource(t)
}

// The probe must be able to succeed (TCG boots everywhere) and to fail (no
// guest boots in a millisecond), or its verdict on KVM means nothing.
func TestIntegrationVMProbeBoot(t *testing.T) {
	source := vmSource(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	start := time.Now()
	if err := images.ProbeAccel(ctx, source, images.AccelTCG, 90*time.Second); err != nil {
		t.Fatalf("probe under TCG: %v", err)
	}
	t.Logf("TCG probe boot: %s", time.Since(start).Round(time.Millisecond))

	err := images.ProbeAccel(ctx, source, images.AccelTCG, time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "no guest init after") {
		t.Errorf("probe with 1ms = %v, want a timeout", err)
	}

	start = time.Now()
	accel, reason := images.ChooseAccel(ctx, source)
	t.Logf("ChooseAccel: %s (%s) in %s", accel, reason, time.Since(start).Round(time.Millisecond))
	if reason == "" {
		t.Error("ChooseAccel gave no reason")
	}
	switch accel {
	case images.AccelKVM:
		if err := images.ProbeAccel(ctx, source, images.AccelKVM, 30*time.Second); err != nil {
			t.Errorf("ChooseAccel chose KVM, but a second probe fails: %v", err)
		}
	case images.AccelTCG:
		if !strings.Contains(reason, "TCG") {
			t.Errorf("reason %q does not say TCG", reason)
		}
	default:
		t.Errorf("ChooseAccel = %q", accel)
	}
}
