// Package logging holds the one rule Tokenwarden imposes on every logger:
// nothing at client-go's body-dumping verbosity.
package logging

import "github.com/go-logr/logr"

// MaxVerbosity is the highest V level that is ever written. client-go logs
// whole request and response bodies at V(8), and a Secret's body holds a
// token value (base64 is not a secret), so levels from 8 up are dropped
// whatever --zap-log-level asks for: no token value reaches a log at any
// verbosity.
const MaxVerbosity = 7

// Capped returns logger with every V level above MaxVerbosity disabled.
func Capped(logger logr.Logger) logr.Logger {
	if logger.GetSink() == nil {
		return logger
	}
	return logr.New(cappedSink{logger.GetSink()})
}

type cappedSink struct{ logr.LogSink }

func (s cappedSink) Enabled(level int) bool {
	return level <= MaxVerbosity && s.LogSink.Enabled(level)
}

func (s cappedSink) WithValues(kv ...any) logr.LogSink {
	return cappedSink{s.LogSink.WithValues(kv...)}
}

func (s cappedSink) WithName(name string) logr.LogSink {
	return cappedSink{s.LogSink.WithName(name)}
}

// WithCallDepth keeps caller information right through the wrapper.
func (s cappedSink) WithCallDepth(depth int) logr.LogSink {
	if d, ok := s.LogSink.(logr.CallDepthLogSink); ok {
		return cappedSink{d.WithCallDepth(depth)}
	}
	return s
}
