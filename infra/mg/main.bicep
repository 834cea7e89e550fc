// Cryptward for a management group: one bot for every subscription below it, present and future.
// Deployed at the management group (`az deployment mg create`, README "Deploy at a management group"): the bot itself
// (../main.bicep, in the subscription `botSubscriptionId`, with CRYPTWARD_SCOPES the group), its role assigned once at
// the group with the ABAC condition (role.bicep), and the enrolment of every subscription's events by an Azure
// Policy DeployIfNotExists assignment at the group (enrolment.bicep), and every key vault's Key Vault events by
// another (vault-events.bicep).
targetScope = 'managementGroup'

@minLength(1)
@maxLength(64)
@description('Names the bot\'s resource group and seeds the unique resource names (as azd\'s environment name).')
param environmentName string

@minLength(1)
@description('Region of the bot, of the policy assignment\'s identity and of each subscription\'s topic resource group.')
param location string

@description('The subscription the bot runs in (it need not be below the group).')
param botSubscriptionId string

@description('Object id of the person deploying: may write the bot vault\'s secrets. Empty: nobody.')
param principalId string = ''

@description('CRYPTWARD_ROUTES: JSON {"<owner or *>": ["teams:ops", "webhook:audit"]}.')
param routes string = ''

@description('CRYPTWARD_POLICY_MODES: JSON {"<policy id>": "audit|approve|remediate"}.')
param policyModes string = ''

@description('Grant the role\'s Key Vault data actions at the group (custom roles with DataActions there: preview).')
param withDataActions bool = false

module bot '../main.bicep' = {
  name: 'cryptward-bot'
  scope: subscription(botSubscriptionId)
  params: {
    environmentName: environmentName
    location: location
    principalId: principalId
    routes: routes
    policyModes: policyModes
    managementGroupId: managementGroup().name
  }
}

module role 'role.bicep' = {
  name: 'cryptward-role'
  params: {
    principalId: bot.outputs.CRYPTWARD_PRINCIPAL_ID
    withDataActions: withDataActions
  }
}

module enrolment 'enrolment.bicep' = {
  name: 'cryptward-enrolment'
  params: {
    functionResourceId: bot.outputs.CRYPTWARD_EVENT_FUNCTION_ID
    identityResourceId: bot.outputs.CRYPTWARD_EVENTS_IDENTITY_ID
    deadLetterStorageId: bot.outputs.CRYPTWARD_STORAGE_ID
    deadLetterContainer: bot.outputs.CRYPTWARD_DEAD_LETTER_CONTAINER
    location: location
  }
}

module vaultEvents 'vault-events.bicep' = {
  name: 'cryptward-vault-events'
  params: {
    functionResourceId: bot.outputs.CRYPTWARD_EVENT_FUNCTION_ID
    identityResourceId: bot.outputs.CRYPTWARD_EVENTS_IDENTITY_ID
    deadLetterStorageId: bot.outputs.CRYPTWARD_STORAGE_ID
    deadLetterContainer: bot.outputs.CRYPTWARD_DEAD_LETTER_CONTAINER
    location: location
  }
}

output CRYPTWARD_SCOPES string = '/providers/Microsoft.Management/managementGroups/${managementGroup().name}'
output AZURE_FUNCTION_NAME string = bot.outputs.AZURE_FUNCTION_NAME
output AZURE_RESOURCE_GROUP string = bot.outputs.AZURE_RESOURCE_GROUP
output CRYPTWARD_ROLE_DEFINITION_ID string = role.outputs.roleDefinitionId
output CRYPTWARD_ENROLMENT_PRINCIPAL_ID string = enrolment.outputs.assignmentPrincipalId
