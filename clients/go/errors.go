package ocirpc

import (
	"errors"
	"fmt"
	"strings"
)

// The contract's error codes (protocol/openrpc.json, components.errors).
const (
	CodeParseError          = -32700
	CodeInvalidRequest      = -32600
	CodeMethodNotFound      = -32601
	CodeInvalidParams       = -32602
	CodeInternalError       = -32603
	CodeRequestCancelled    = -32800
	CodeNotFound            = -32001
	CodeAccessDenied        = -32002
	CodeIntegrityFailure    = -32003
	CodeRegistryUnavailable = -32004
	CodeLimitExceeded       = -32005
	CodeUnsupportedContent  = -32006
)

// Sentinel errors, one per code a method answers with: an *RPCError of that
// code matches it with errors.Is, e.g. errors.Is(err, ocirpc.ErrNotFound).
var (
	ErrNotFound            = errors.New("ocirpc: not found")
	ErrAccessDenied        = errors.New("ocirpc: access denied")
	ErrIntegrityFailure    = errors.New("ocirpc: integrity failure")
	ErrRegistryUnavailable = errors.New("ocirpc: registry unavailable")
	ErrLimitExceeded       = errors.New("ocirpc: limit exceeded")
	ErrUnsupportedContent  = errors.New("ocirpc: unsupported content")
	ErrInvalidParams       = errors.New("ocirpc: invalid params")
	ErrCancelled           = errors.New("ocirpc: request cancelled")
)

var sentinels = map[int]error{
	CodeNotFound:            ErrNotFound,
	CodeAccessDenied:        ErrAccessDenied,
	CodeIntegrityFailure:    ErrIntegrityFailure,
	CodeRegistryUnavailable: ErrRegistryUnavailable,
	CodeLimitExceeded:       ErrLimitExceeded,
	CodeUnsupportedContent:  ErrUnsupportedContent,
	CodeInvalidParams:       ErrInvalidParams,
	CodeRequestCancelled:    ErrCancelled,
}

// RPCError is an error the server answered with.
type RPCError struct {
	Code    int                    `json:"code"`
	Message string                 `json:"message"`
	Data    map[string]interface{} `json:"data"`
}

func (e *RPCError) Error() string { return fmt.Sprintf("%d %s", e.Code, e.Message) }

// Is reports whether target is the sentinel error of e's code.
func (e *RPCError) Is(target error) bool {
	sentinel, ok := sentinels[e.Code]
	return ok && target == sentinel
}

// Reason is the contract's snake_case reason, e.g. "manifest_unknown".
func (e *RPCError) Reason() string { s, _ := e.Data["reason"].(string); return s }

// Ref is the reference the error is about, when there is one.
func (e *RPCError) Ref() string { s, _ := e.Data["ref"].(string); return s }

// Retryable reports whether the server says the same request may succeed later.
func (e *RPCError) Retryable() bool { b, _ := e.Data["retryable"].(bool); return b }

// IncompleteBatchError means a streamed batch ended without an outcome for
// each distinct ref it asked for, which the protocol promises. Left out
// silently, those refs would read as refs that failed.
type IncompleteBatchError struct {
	// Missing are the refs without an outcome, sorted.
	Missing []string
}

func (e *IncompleteBatchError) Error() string {
	return fmt.Sprintf("ocirpc: ec.oci.image_manifests ended without an answer for %d ref(s): %s",
		len(e.Missing), strings.Join(e.Missing, ", "))
}

// ServerDiedError means the server exited (or could not start) before answering.
type ServerDiedError struct {
	ExitCode int
	Stderr   string
}

func (e *ServerDiedError) Error() string {
	return fmt.Sprintf("ocirpc exited (status %d); last stderr:\n%s", e.ExitCode, e.Stderr)
}
