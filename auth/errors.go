package auth

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by this package wrap one of them where it
// applies, so callers can test with errors.Is.
var (
	// ErrSyntax marks a line of a password or ACL file that cannot be parsed.
	ErrSyntax = errors.New("syntax error")
	// ErrBadHash marks a password hash that is malformed, uses an unknown
	// scheme or has parameters out of range.
	ErrBadHash = errors.New("bad password hash")
	// ErrBadUsername marks a user name that cannot be stored in a password
	// file (empty, or with ':', a line break, or surrounding blanks).
	ErrBadUsername = errors.New("bad user name")
	// ErrHook marks an HTTP hook that did not give a usable answer: a
	// transport error, a time-out, a non-2xx status or a malformed body.
	ErrHook = errors.New("http hook failed")
)

// ParseError reports a bad line in a password or ACL file. Loading a file
// reports every bad line at once, joined with errors.Join.
type ParseError struct {
	File string // file name as given to the loader
	Line int    // 1-based line number
	Err  error  // what is wrong; wraps ErrSyntax or ErrBadHash
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("auth: %s:%d: %v", e.File, e.Line, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// maxFileErrors caps how many bad lines one load reports.
const maxFileErrors = 50

// lineErrors collects ParseErrors for one file.
type lineErrors struct {
	file string
	errs []error
	more int
}

func (l *lineErrors) add(line int, err error) {
	if len(l.errs) >= maxFileErrors {
		l.more++
		return
	}
	l.errs = append(l.errs, &ParseError{File: l.file, Line: line, Err: err})
}

func (l *lineErrors) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	if l.more > 0 {
		l.errs = append(l.errs, fmt.Errorf("auth: %s: %d more bad lines not shown", l.file, l.more))
	}
	return errors.Join(l.errs...)
}

// syntaxf returns an error wrapping ErrSyntax.
func syntaxf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrSyntax}, args...)...)
}
