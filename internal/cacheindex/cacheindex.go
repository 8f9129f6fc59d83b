// Package cacheindex names the cache indexes on ApiTokens that the reconcilers
// and the admission webhooks share, and registers them.
package cacheindex

import (
	"context"
	"fmt"

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

// TokensOfTeam lists, each once, the tokens whose entitlement team may
// decide: its Team tokens (by the Teams index) and the Wildcard tokens of
// its owners (by WildcardCreator). On an error it returns what it found
// before it, with the error.
func TokensOfTeam(ctx context.Context, reader client.Reader, team *v1alpha1.Team, opts ...client.ListOption) ([]v1alpha1.ApiToken, error) {
	seen := map[client.ObjectKey]bool{}
	var found []v1alpha1.ApiToken
	collect := func(field, key string) error {
		tokens := &v1alpha1.ApiTokenList{}
		if err := reader.List(ctx, tokens, append([]client.ListOption{client.MatchingFields{field: key}}, opts...)...); err != nil {
			return fmt.Errorf("listing tokens by the index %s: %w", field, err)
		}
		for i := range tokens.Items {
			if k := client.ObjectKeyFromObject(&tokens.Items[i]); !seen[k] {
				seen[k] = true
				found = append(found, tokens.Items[i])
			}
		}
		return nil
	}
	if err := collect(Teams, team.Name); err != nil {
		return found, err
	}
	for _, owner := range team.Spec.Owners {
		if err := collect(WildcardCreator, authz.SubjectKey(owner)); err != nil {
			return found, err
		}
	}
	return found, nil
}
