package dashboard_test

import (
	"net/http"
	"strings"
)

func httpPost(url string) (int, error) {
	resp, err := http.Post(url, "application/json", nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
