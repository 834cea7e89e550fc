// The custom role (role.bicep) for the bot in one resource group of its scope, with the same ABAC condition as the
// subscription-wide assignment (see role.bicep).
param principalId string
param roleDefinitionId string

var role = loadJsonContent('../cryptward-role.json')

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, roleDefinitionId)
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: principalId
    principalType: 'ServicePrincipal'
    condition: role.assignmentCondition
    conditionVersion: '2.0'
  }
}
