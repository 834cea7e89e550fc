// The bot's role, assigned once at the management group and inherited by every subscription below it (Microsoft
// Learn, "Understand scope for Azure RBAC"). A custom role may name one management group in its assignableScopes
// (Learn, "Azure custom roles": "You can define only one management group in AssignableScopes"); a custom role with
// DataActions at management-group scope is in preview (same page), so the Key Vault data actions of
// cryptward-role.json (key rotation) are left out unless `withDataActions` says otherwise: then rotation needs the
// data actions granted per subscription (README, "Deploy at a management group"). The assignment carries the same
// ABAC condition as the subscription's (app/role.bicep): the only role assignments the bot may write are Key Vault
// Crypto Service Encryption User, for service principals. Reading the hierarchy (`descendants`) is added: the bot
// expands the group to its subscriptions on each sweep (remediations/scopes.py).
targetScope = 'managementGroup'

param principalId string
@description('Include the role\'s Key Vault dataActions (custom roles with DataActions at management-group scope: preview).')
param withDataActions bool = false

var role = loadJsonContent('../cryptward-role.json')
var hierarchy = [
  'Microsoft.Management/managementGroups/read'
  'Microsoft.Management/managementGroups/descendants/read'
]

resource definition 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(managementGroup().id, role.roleName)
  properties: {
    roleName: '${role.roleName} (${managementGroup().name})' // custom role names are unique per tenant
    description: role.description
    type: 'CustomRole'
    permissions: [
      {
        actions: concat(role.actions, hierarchy)
        notActions: role.notActions
        dataActions: withDataActions ? role.dataActions : []
        notDataActions: withDataActions ? role.notDataActions : []
      }
    ]
    assignableScopes: [managementGroup().id]
  }
}

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(managementGroup().id, principalId, definition.id)
  properties: {
    roleDefinitionId: definition.id
    principalId: principalId
    principalType: 'ServicePrincipal'
    condition: role.assignmentCondition
    conditionVersion: '2.0'
  }
}

output roleDefinitionId string = definition.id
