// Package index names the cache indexes on ApiTokens that the reconcilers
// and the admission webhooks share, and registers them.
package index

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/authz"
)

const (
	// Teams indexes ApiTokens by the Teams in spec.teams, so a Team
	// change looks up only its own tokens instead of listing every token.
	Teams = "spec.teams"

	// WildcardCreator indexes Wildcard tokens by their creator's user
	// name and groups (authz.OwnerKeys), so a change of a Team's owners
	// finds the Wildcard tokens of exactly those owners.
	WildcardCreator = "wildcard.creator"
)

// Setup registers the cache indexes the reconcilers rely on.
func Setup(ctx context.Context, mgr ctrl.Manager) error {
	indexer := mgr.GetFieldIndexer()
	if err := indexer.IndexField(ctx, &v1alpha1.ApiToken{}, Teams, func(obj client.Object) []string {
		return obj.(*v1alpha1.ApiToken).Spec.Teams
	}); err != nil {
		return err
	}
	return indexer.IndexField(ctx, &v1alpha1.ApiToken{}, WildcardCreator, func(obj client.Object) []string {
		tok := obj.(*v1alpha1.ApiToken)
		if tok.Spec.Type != v1alpha1.WildcardTokenType {
			return nil
		}
		creator, _ := authz.CreatorOf(tok)
		return authz.OwnerKeys(creator)
	})
}
