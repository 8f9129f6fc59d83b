package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// patchStatus writes obj's status as a merge patch against base, and nothing
// at all when the status would be stored as it is: an idle cluster makes no
// writes. What is compared is the JSON the API server would store, not the
// Go values: it keeps times to the second, and a status computed at a
// finer instant than the one it returned would otherwise send an empty
// patch.
func patchStatus[T client.Object](ctx context.Context, c client.Client, obj, base T, status func(T) any, opts ...client.MergeFromOption) error {
	before, err := json.Marshal(status(base))
	if err != nil {
		return fmt.Errorf("encoding the status: %w", err)
	}
	after, err := json.Marshal(status(obj))
	if err != nil {
		return fmt.Errorf("encoding the status: %w", err)
	}
	if bytes.Equal(before, after) {
		return nil
	}
	return client.IgnoreNotFound(c.Status().Patch(ctx, obj, client.MergeFromWithOptions(base, opts...)))
}
