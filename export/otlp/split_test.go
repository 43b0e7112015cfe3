package otlp_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPackageSplit: a program importing procmon carries no OpenTelemetry,
// gRPC, protobuf or Prometheus client code; export/otlp no Prometheus
// client, metrics/prom neither OpenTelemetry nor gRPC (the README's table).
func TestPackageSplit(t *testing.T) {
	const mod = "github.com/proctrack/proctrack/"
	otel := []string{"go.opentelemetry.io/", "google.golang.org/grpc", "google.golang.org/protobuf"}
	promClient := []string{"github.com/prometheus/client_golang", "github.com/prometheus/client_model", "github.com/prometheus/common"}
	for pkg, banned := range map[string][]string{
		"procmon":      append(append([]string{}, otel...), promClient...),
		"sockets":      append(append([]string{}, otel...), promClient...),
		"export/otlp":  promClient,
		"metrics/prom": otel[:2], // client_golang uses protobuf itself
	} {
		out, err := exec.Command("go", "list", "-deps", mod+pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range banned {
				if strings.HasPrefix(dep, b) {
					t.Errorf("%s imports %s", pkg, dep)
				}
			}
		}
	}
}
