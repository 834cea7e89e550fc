// The bot's right on the Log Analytics workspace it sends key vault diagnostics to (CRYPTWARD_WORKSPACE_ID), and on
// no other. A diagnostic setting naming a workspace passes ARM's linked-scope check only when the caller holds
// Microsoft.OperationalInsights/workspaces/sharedKeys/action on it (403 LinkedAuthorizationFailed otherwise: recorded
// answers quoted in JimGBritt/AzurePolicy#17 and MicrosoftDocs/azure-docs#80159). The built-in roles holding it are
// too broad for that one action: Log Analytics Contributor (Microsoft.OperationalInsights/*) and Monitoring
// Contributor (workspaces/write, sharedKeys/read, ...; Microsoft Learn, "Azure built-in roles for Monitor"). So a
// custom role of that action alone (infra/cryptward-workspace-role.json), assigned on the workspace.
targetScope = 'resourceGroup'

param workspaceName string
param principalId string

var role = loadJsonContent('../cryptward-workspace-role.json')

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource definition 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, role.roleName)
  properties: {
    roleName: '${role.roleName} (${resourceGroup().name})' // custom role names are unique per tenant
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
    assignableScopes: [resourceGroup().id]
  }
}

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, principalId, definition.id)
  scope: workspace
  properties: {
    roleDefinitionId: definition.id
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
