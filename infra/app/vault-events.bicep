// Key Vault's own events for every vault of the subscription, now and when it is made: an Azure Policy
// DeployIfNotExists definition (../vault-events.json, loaded unmodified but for its roles) assigned at the
// subscription, whose deployment gives each vault its Event Grid system topic (topic type Microsoft.KeyVault.vaults,
// in the vault's resource group and region) and one event subscription to the bot's function with the expiry events
// (Secret/Certificate/KeyNearExpiry, *Expired, KeyNewVersionCreated: Learn, "Azure Key Vault as Event Grid source"),
// the retry policy and dead-letter container of events.bicep. The topics dead-letter with the events identity
// (events-identity.bicep), so nothing is granted per vault. A remediation task subscribes the vaults already there.
// With resource-group scopes the definition and role stay here and vault-events-group.bicep assigns them per group.
targetScope = 'subscription'

param functionResourceId string
param identityResourceId string
param deadLetterStorageId string
param deadLetterContainer string
param location string
@description('Assign at the subscription (false: the caller assigns per resource group with vault-events-group.bicep).')
param assignAtSubscription bool = true

var definition = loadJsonContent('../vault-events.json')
// The assignment's identity needs, at its scope, the roles its definition lists (Learn, "Remediate non-compliant
// resources with Azure Policy", #configure-the-managed-identity). Least that works: the vaults' system topics and
// their event subscriptions; Microsoft.EventGrid/eventSubscriptions/write on the vault ("You must have the
// Microsoft.EventGrid/EventSubscriptions/Write permission on the resource that is the event source", Learn,
// "Authorizing access to Event Grid resources"); the deployment in the vault's resource group; assigning the topics'
// user-assigned identity.
var vaultEventActions = [
  'Microsoft.EventGrid/systemTopics/read'
  'Microsoft.EventGrid/systemTopics/write'
  'Microsoft.EventGrid/systemTopics/eventSubscriptions/read'
  'Microsoft.EventGrid/systemTopics/eventSubscriptions/write'
  'Microsoft.EventGrid/eventSubscriptions/write'
  'Microsoft.Resources/subscriptions/resourceGroups/read'
  'Microsoft.Resources/deployments/*'
  'Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action'
  'Microsoft.Web/sites/functions/read' // unverified: what Event Grid checks on an AzureFunction destination
]

resource vaultEventRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'cryptward-vault-events')
  properties: {
    roleName: 'Cryptward vault events (${subscription().subscriptionId})'
    description: 'Deploys a key vault\'s Event Grid system topic and Cryptward\'s event subscription on it.'
    type: 'CustomRole'
    permissions: [{ actions: vaultEventActions, notActions: [], dataActions: [], notDataActions: [] }]
    assignableScopes: [subscription().id]
  }
}

resource policy 'Microsoft.Authorization/policyDefinitions@2023-04-01' = {
  name: 'cryptward-vault-events'
  properties: {
    displayName: definition.properties.displayName
    description: definition.properties.description
    policyType: 'Custom'
    mode: definition.properties.mode
    metadata: definition.properties.metadata
    parameters: definition.properties.parameters
    policyRule: {
      if: definition.properties.policyRule.if
      then: {
        effect: definition.properties.policyRule.then.effect
        details: union(definition.properties.policyRule.then.details, { roleDefinitionIds: [vaultEventRole.id] })
      }
    }
  }
}

resource assignment 'Microsoft.Authorization/policyAssignments@2023-04-01' = if (assignAtSubscription) {
  name: 'cryptward-vault-events'
  location: location
  identity: { type: 'SystemAssigned' }
  properties: {
    displayName: 'Send every key vault\'s expiry events to Cryptward'
    policyDefinitionId: policy.id
    enforcementMode: 'Default'
    parameters: {
      functionResourceId: { value: functionResourceId }
      identityResourceId: { value: identityResourceId }
      deadLetterStorageId: { value: deadLetterStorageId }
      deadLetterContainer: { value: deadLetterContainer }
    }
  }
}

resource vaultEventAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (assignAtSubscription) {
  name: guid(subscription().id, assignment.id, vaultEventRole.id)
  properties: {
    roleDefinitionId: vaultEventRole.id
    principalId: assignment.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// The vaults already there: a remediation task deploys for each non-compliant one.
resource existing 'Microsoft.PolicyInsights/remediations@2021-10-01' = if (assignAtSubscription) {
  name: 'cryptward-vault-events-existing'
  dependsOn: [vaultEventAssignment]
  properties: {
    policyAssignmentId: assignment.id
    resourceDiscoveryMode: 'ReEvaluateCompliance'
  }
}

output assignmentPrincipalId string = assignAtSubscription ? assignment.identity.principalId : ''
output policyDefinitionId string = policy.id
output roleDefinitionId string = vaultEventRole.id
