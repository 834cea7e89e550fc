// The vault-events policy (vault-events.bicep's definition and role) assigned in one resource group of the bot's
// scope: every vault of the group, now and later, gets its system topic and event subscription to the bot; a
// remediation task subscribes those already there. Nothing is made outside the group.
targetScope = 'resourceGroup'

param policyDefinitionId string
param roleDefinitionId string
param functionResourceId string
param identityResourceId string
param deadLetterStorageId string
param deadLetterContainer string
param location string

resource assignment 'Microsoft.Authorization/policyAssignments@2023-04-01' = {
  name: 'cryptward-vault-events'
  location: location
  identity: { type: 'SystemAssigned' }
  properties: {
    displayName: 'Send every key vault\'s expiry events to Cryptward (${resourceGroup().name})'
    policyDefinitionId: policyDefinitionId
    enforcementMode: 'Default'
    parameters: {
      functionResourceId: { value: functionResourceId }
      identityResourceId: { value: identityResourceId }
      deadLetterStorageId: { value: deadLetterStorageId }
      deadLetterContainer: { value: deadLetterContainer }
    }
  }
}

resource vaultEventAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, assignment.id, roleDefinitionId)
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: assignment.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource existing 'Microsoft.PolicyInsights/remediations@2021-10-01' = {
  name: 'cryptward-vault-events-existing'
  dependsOn: [vaultEventAssignment]
  properties: {
    policyAssignmentId: assignment.id
    resourceDiscoveryMode: 'ReEvaluateCompliance'
  }
}
