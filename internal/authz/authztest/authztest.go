// Package authztest holds fakes of internal/authz's interfaces for tests
// of the packages that call them.
package authztest

import (
	"context"
	"sync"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/authz"
)

// Admins is an authz.AdminChecker answering from a set of user names, or
// with Err, and counting how often it was asked.
type Admins struct {
	// Names are the admins' user names.
	Names map[string]bool
	// Err, when set, is every answer.
	Err error

	mu    sync.Mutex
	asked int
}

var _ authz.AdminChecker = (*Admins)(nil)

// IsAdmin implements authz.AdminChecker.
func (a *Admins) IsAdmin(_ context.Context, user *v1alpha1.UserIdentity) (bool, error) {
	a.mu.Lock()
	a.asked++
	a.mu.Unlock()
	if a.Err != nil {
		return false, a.Err
	}
	return a.Names[user.Username], nil
}

// Asked is how often IsAdmin was called.
func (a *Admins) Asked() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.asked
}
