package controllers

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// patchStatus writes obj's status as a merge patch against base, and nothing
// at all when the status did not change: an idle cluster makes no writes.
func patchStatus[T client.Object](ctx context.Context, c client.Client, obj, base T, status func(T) any, opts ...client.MergeFromOption) error {
	if equality.Semantic.DeepEqual(status(base), status(obj)) {
		return nil
	}
	return client.IgnoreNotFound(c.Status().Patch(ctx, obj, client.MergeFromWithOptions(base, opts...)))
}
