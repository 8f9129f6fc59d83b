package controllers

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/authz"
)

const (
	// TeamsIndex indexes ApiTokens by the Teams in spec.teams, so a Team
	// change looks up only its own tokens instead of listing every token.
	TeamsIndex = "spec.teams"

	// WildcardCreatorIndex indexes Wildcard tokens by their creator's user
	// name and groups (authz.OwnerKeys), so a change of a Team's owners
	// finds the Wildcard tokens of exactly those owners.
	WildcardCreatorIndex = "wildcard.creator"
)

// SetupIndexes registers the cache indexes the reconcilers rely on.
func SetupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	indexer := mgr.GetFieldIndexer()
	if err := indexer.IndexField(ctx, &v1alpha1.ApiToken{}, TeamsIndex, func(obj client.Object) []string {
		return obj.(*v1alpha1.ApiToken).Spec.Teams
	}); err != nil {
		return err
	}
	return indexer.IndexField(ctx, &v1alpha1.ApiToken{}, WildcardCreatorIndex, func(obj client.Object) []string {
		tok := obj.(*v1alpha1.ApiToken)
		if tok.Spec.Type != v1alpha1.WildcardTokenType {
			return nil
		}
		creator, _ := authz.CreatorOf(tok)
		return authz.OwnerKeys(creator)
	})
}
