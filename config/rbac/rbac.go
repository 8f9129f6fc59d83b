// Package rbac embeds the ClusterRoles for people (admin, editor, viewer),
// so the local mode installs the same roles kustomize ships.
package rbac

import "embed"

// Roles holds apitoken_*_role.yaml; kustomize prefixes their names with
// "tokenwarden-", and so must anyone else installing them.
//
//go:embed apitoken_admin_role.yaml apitoken_editor_role.yaml apitoken_viewer_role.yaml
var Roles embed.FS
