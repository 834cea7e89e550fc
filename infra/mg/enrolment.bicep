// Every subscription of the management group enrolled in Cryptward's events, now and when it joins: an Azure Policy
// DeployIfNotExists definition (enrol-events.json, loaded unmodified but for its roles) and its assignment at the
// management group, as Azure Landing Zones enrol subscriptions (Microsoft Learn, "Azure landing zone policies",
// https://learn.microsoft.com/azure/cloud-adoption-framework/ready/landing-zone/design-area/governance and the ALZ
// policy "Deploy-ASC-SecurityContacts": `if type == Microsoft.Resources/subscriptions`, existenceScope and
// deploymentScope Subscription). Its deployment makes, in each subscription, a resource group with the
// subscription's Event Grid system topic (one per source subscription is all Event Grid allows) and one event
// subscription to the bot's function with the filters, retry policy and dead-letter of app/events.bicep. The topics
// deliver and dead-letter with one user-assigned identity made beside the bot (events-identity.bicep), so nothing
// is granted per subscription. A remediation task deploys it for the subscriptions already there.
targetScope = 'managementGroup'

param functionResourceId string
param identityResourceId string
param deadLetterStorageId string
param deadLetterContainer string
param location string
@description('Where each subscription\'s system topic is made.')
param resourceGroupName string = 'rg-cryptward-events'

var definition = loadJsonContent('enrol-events.json')
// Azure Policy: a DeployIfNotExists assignment's managed identity needs, at the assignment's scope, the roles its
// definition lists in roleDefinitionIds (Microsoft.Learn, "Remediate non-compliant resources with Azure Policy",
// https://learn.microsoft.com/azure/governance/policy/how-to/remediate-resources#configure-the-managed-identity).
// Least that works: system topics and their event subscriptions, the resource group and deployment that hold them,
// and assigning the topics' user-assigned identity.
var enrolActions = [
  'Microsoft.EventGrid/systemTopics/*'
  'Microsoft.EventGrid/systemTopics/eventSubscriptions/*'
  'Microsoft.Resources/subscriptions/resourceGroups/read'
  'Microsoft.Resources/subscriptions/resourceGroups/write'
  'Microsoft.Resources/deployments/*'
  'Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action'
  'Microsoft.Web/sites/functions/read' // unverified: what Event Grid checks on an AzureFunction destination
]

resource enrolRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(managementGroup().id, 'cryptward-event-enrolment')
  properties: {
    roleName: 'Cryptward event enrolment (${managementGroup().name})'
    description: 'Deploys the Event Grid system topic and Cryptward\'s event subscription in a subscription.'
    type: 'CustomRole'
    permissions: [{ actions: enrolActions, notActions: [], dataActions: [], notDataActions: [] }]
    assignableScopes: [managementGroup().id]
  }
}

resource policy 'Microsoft.Authorization/policyDefinitions@2023-04-01' = {
  name: 'cryptward-enrol-events'
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
        details: union(definition.properties.policyRule.then.details, { roleDefinitionIds: [enrolRole.id] })
      }
    }
  }
}

resource assignment 'Microsoft.Authorization/policyAssignments@2023-04-01' = {
  name: 'cryptward-enrol'
  location: location
  identity: { type: 'SystemAssigned' }
  properties: {
    displayName: 'Enrol every subscription in Cryptward\'s events'
    policyDefinitionId: policy.id
    enforcementMode: 'Default'
    parameters: {
      functionResourceId: { value: functionResourceId }
      identityResourceId: { value: identityResourceId }
      deadLetterStorageId: { value: deadLetterStorageId }
      deadLetterContainer: { value: deadLetterContainer }
      resourceGroupName: { value: resourceGroupName }
      location: { value: location }
    }
  }
}

resource enrolAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(managementGroup().id, assignment.id, enrolRole.id)
  properties: {
    roleDefinitionId: enrolRole.id
    principalId: assignment.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// The subscriptions already in the group: a remediation task deploys for each non-compliant one.
resource existing 'Microsoft.PolicyInsights/remediations@2021-10-01' = {
  name: 'cryptward-enrol-existing'
  dependsOn: [enrolAssignment]
  properties: {
    policyAssignmentId: assignment.id
    resourceDiscoveryMode: 'ReEvaluateCompliance'
  }
}

output assignmentPrincipalId string = assignment.identity.principalId
output policyDefinitionId string = policy.id
