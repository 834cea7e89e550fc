// The bot's custom role: exactly the permissions of infra/cryptward-role.json (the single source of truth, which
// the tests grant to the sandbox's bot), assignable in this subscription; assigned here at the subscription, or per
// resource group by role-assignment.bicep. Its dataActions (keys/read, keys/rotate/action,
// keyrotationpolicies/read|write) are the Key Vault data role rotation needs: assigned at the subscription or a
// resource group they apply to every RBAC-mode vault below it, so no separate Key Vault role is assigned.
// The role holds roleAssignments/write (des-key-access gives a disk encryption set's identity Key Vault Crypto Service
// Encryption User on its vault), so every assignment of it carries role.assignmentCondition, an Azure ABAC delegation
// condition: the role assignments the bot may write are that role, for service principals, and nothing else (Microsoft
// Learn, "Delegate Azure role assignment management to others with conditions", example "Constrain roles and principal
// types"). The role has no roleAssignments/delete, so the condition targets the write only.
targetScope = 'subscription'

param principalId string
param assignAtSubscription bool

var role = loadJsonContent('../cryptward-role.json')

resource definition 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, role.roleName)
  properties: {
    roleName: '${role.roleName} (${subscription().subscriptionId})' // custom role names are unique per tenant
    description: role.description
    type: 'CustomRole'
    permissions: [
      {
        actions: role.actions
        notActions: role.notActions
        dataActions: role.dataActions
        notDataActions: role.notDataActions
      }
    ]
    assignableScopes: [subscription().id]
  }
}

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (assignAtSubscription) {
  name: guid(subscription().id, principalId, definition.id)
  properties: {
    roleDefinitionId: definition.id
    principalId: principalId
    principalType: 'ServicePrincipal'
    condition: role.assignmentCondition
    conditionVersion: '2.0'
  }
}

output roleDefinitionId string = definition.id
