// Package otlptest is an OTLP logs endpoint for tests, built on the
// protocol's official protobuf service definitions
// (go.opentelemetry.io/proto/otlp): it serves the gRPC LogsService and
// OTLP/HTTP's POST /v1/logs (binary protobuf) on loopback, and keeps every
// record it receives with its resource.
package otlptest

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Record is one log record as the endpoint received it.
type Record struct {
	EventName string
	Body      string
	// Attrs are the record's attributes; Resource the resource's.
	Attrs, Resource map[string]*common.AnyValue
}

// Str returns a string attribute ("" if absent or not a string).
func (r Record) Str(key string) string { return r.Attrs[key].GetStringValue() }

// Int returns an integer attribute and whether it is there as one.
func (r Record) Int(key string) (int64, bool) {
	v, ok := r.Attrs[key].GetValue().(*common.AnyValue_IntValue)
	if !ok {
		return 0, false
	}
	return v.IntValue, true
}

// Strings returns a string-array attribute.
func (r Record) Strings(key string) []string {
	var out []string
	for _, v := range r.Attrs[key].GetArrayValue().GetValues() {
		out = append(out, v.GetStringValue())
	}
	return out
}

// Endpoint is a running OTLP logs endpoint.
type Endpoint struct {
	collogs.UnimplementedLogsServiceServer
	// GRPCAddr and HTTPAddr are the host:port of each protocol.
	GRPCAddr, HTTPAddr string

	grpcSrv *grpc.Server
	httpSrv *http.Server
	mu      sync.Mutex
	records []Record
	stop    sync.Once
}

// Start starts an endpoint on loopback; the test's cleanup stops it.
func Start(tb testing.TB) *Endpoint {
	tb.Helper()
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	e := &Endpoint{GRPCAddr: gl.Addr().String(), HTTPAddr: hl.Addr().String(), grpcSrv: grpc.NewServer()}
	collogs.RegisterLogsServiceServer(e.grpcSrv, e)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/logs", e.serveHTTP)
	e.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = e.grpcSrv.Serve(gl) }()
	go func() { _ = e.httpSrv.Serve(hl) }()
	tb.Cleanup(e.Stop)
	return e
}

// Stop stops serving both protocols: the collector is down.
func (e *Endpoint) Stop() {
	e.stop.Do(func() {
		e.grpcSrv.Stop()
		_ = e.httpSrv.Close()
	})
}

// Export implements the gRPC LogsService.
func (e *Endpoint) Export(_ context.Context, req *collogs.ExportLogsServiceRequest) (*collogs.ExportLogsServiceResponse, error) {
	e.add(req)
	return &collogs.ExportLogsServiceResponse{}, nil
}

func (e *Endpoint) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var req collogs.ExportLogsServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &req)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	e.add(&req)
	out, _ := proto.Marshal(&collogs.ExportLogsServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (e *Endpoint) add(req *collogs.ExportLogsServiceRequest) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, rl := range req.GetResourceLogs() {
		res := attrs(rl.GetResource().GetAttributes())
		for _, sl := range rl.GetScopeLogs() {
			for _, lr := range sl.GetLogRecords() {
				e.records = append(e.records, Record{
					EventName: lr.GetEventName(), Body: lr.GetBody().GetStringValue(),
					Attrs: attrs(lr.GetAttributes()), Resource: res,
				})
			}
		}
	}
}

func attrs(kvs []*common.KeyValue) map[string]*common.AnyValue {
	m := make(map[string]*common.AnyValue, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = kv.GetValue()
	}
	return m
}

// Records returns a copy of every record received so far.
func (e *Endpoint) Records() []Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Record(nil), e.records...)
}

// ErrTimeout is returned by Wait when no record matched in time.
var ErrTimeout = errors.New("otlptest: no matching record received")

// Wait returns the first record match accepts, waiting up to timeout.
func (e *Endpoint) Wait(timeout time.Duration, match func(Record) bool) (Record, error) {
	deadline := time.Now().Add(timeout)
	for {
		for _, r := range e.Records() {
			if match(r) {
				return r, nil
			}
		}
		if time.Now().After(deadline) {
			return Record{}, ErrTimeout
		}
		time.Sleep(20 * time.Millisecond)
	}
}
