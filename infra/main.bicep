// Cryptward: the function app and what wakes it, its own vault, and its least-privilege custom role.
// Subscription scope: it makes the resource group, the Event Grid system topic on the subscription (in that group),
// the activity-log alerts over the subscription, and the custom role definition with its assignments.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name: names the resource group and seeds the unique resource names.')
param environmentName string

@minLength(1)
@description('Region of the resource group and of every regional resource (Flex Consumption must be offered there).')
@metadata({ azd: { type: 'location' } })
param location string

@description('Object id of the person running azd: may write the bot vault\'s secrets (webhook URLs, signing key). Empty: nobody.')
param principalId string = ''

@description('Resource groups Cryptward may watch and fix, comma-separated (e.g. "rg-app,rg-keys"). Empty: the whole subscription.')
param scopeResourceGroups string = ''

@description('Management-group mode (infra/mg/main.bicep sets it): the group whose subscriptions the bot watches. Its role and every subscription\'s events are deployed at the group, so none is deployed here.')
param managementGroupId string = ''

@description('CRYPTWARD_POLICY_MODES: JSON {"<policy id>": "audit|approve|remediate"}. Empty: each policy\'s own mode.')
param policyModes string = ''

@description('CRYPTWARD_OWNER_TAG: the tag naming a resource\'s owner.')
param ownerTag string = 'owner'

@description('CRYPTWARD_DES_MAP: JSON {"<region>": {"EncryptionAtRestWithCustomerKey": "<DES id>"}}. Empty: disks are not moved.')
param desMap string = ''

@description('CRYPTWARD_ROUTES: JSON {"<owner or *>": ["teams:ops", "webhook:audit"]}. Empty: every notice to the destinations given below.')
param routes string = ''

@secure()
@description('Teams Workflows webhook URL for notices (destination teams:ops). Stored in the bot vault. Empty: none.')
param teamsWebhookUrl string = ''

@secure()
@description('Generic webhook URL for notices (destination webhook:audit). Stored in the bot vault. Empty: none.')
param webhookUrl string = ''

@secure()
@description('HMAC secret the generic webhook checks. Stored in the bot vault.')
param webhookSecret string = ''

@secure()
@description('CRYPTWARD_APPROVAL_KEY: signs approve/deny links (e.g. `openssl rand -base64 32`). Stored in the bot vault.')
param approvalKey string = ''

@description('CRYPTWARD_APPROVERS: object ids of the users or groups who may approve or deny (commas or spaces). Empty: nobody may approve.')
param approvers string = ''

@description('CRYPTWARD_SIGNIN_CLIENT_ID: application (client) id of the approval page\'s app registration (redirect URI https://<app>.azurewebsites.net/api/approvals).')
param signinClientId string = ''

@secure()
@description('CRYPTWARD_SIGNIN_CLIENT_SECRET: that app registration\'s client secret. Stored in the bot vault.')
param signinClientSecret string = ''

@description('SWEEP_SCHEDULE: NCRONTAB of the full sweep (UTC).')
param sweepSchedule string = '0 30 2 * * *'

@description('ROTATION_SCHEDULE: NCRONTAB of the key rotation run (UTC).')
param rotationSchedule string = '0 0 3 * * *'

@allowed(['Enabled', 'Disabled'])
@description('Public network access of the bot vault. Disabled needs VNet integration and a private endpoint (not in this template).')
param vaultPublicNetworkAccess string = 'Enabled'

@description('Name of the Event Grid triggered function (function_app.py).')
param eventFunctionName string = 'eventgrid'

@description('Route of the HTTP function the action group calls (function_app.py), under /api/.')
param alertRoute string = 'alerts'

@description('Work queue and table names: the same as remediations/store/workqueue.py and remediations/store/ledger.py.')
param workQueueName string = 'cryptward-work'
param tablePrefix string = 'cw'

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName, '${ownerTag}': empty(principalId) ? 'cryptward' : principalId }
var groupsInScope = empty(scopeResourceGroups) ? [] : split(replace(scopeResourceGroups, ' ', ''), ',')
var groupIds = [for g in groupsInScope: '${subscription().id}/resourceGroups/${g}']
var scopes = !empty(managementGroupId)
  ? '/providers/Microsoft.Management/managementGroups/${managementGroupId}'
  : empty(groupsInScope) ? subscription().id : join(groupIds, ',')
var atGroup = !empty(managementGroupId)
var functionAppName = 'func-cryptward-${resourceToken}'
var deploymentContainer = 'app-package-${take(resourceToken, 7)}'
var deadLetterContainer = 'eventgrid-deadletter'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-cryptward-${environmentName}'
  location: location
  tags: tags
}

module identity 'br/public:avm/res/managed-identity/user-assigned-identity:0.4.1' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-cryptward-${resourceToken}'
    location: location
    tags: tags
  }
}

module logAnalytics 'br/public:avm/res/operational-insights/workspace:0.7.0' = {
  name: 'loganalytics'
  scope: rg
  params: {
    name: 'log-cryptward-${resourceToken}'
    location: location
    tags: tags
    dataRetention: 30
  }
}

module workspaceAccess 'app/workspace-access.bicep' = {
  name: 'workspace-access'
  scope: rg
  params: {
    workspaceName: logAnalytics.outputs.name
    principalId: identity.outputs.principalId
  }
}

module appInsights 'br/public:avm/res/insights/component:0.4.1' = {
  name: 'appinsights'
  scope: rg
  params: {
    name: 'appi-cryptward-${resourceToken}'
    location: location
    tags: tags
    workspaceResourceId: logAnalytics.outputs.resourceId
    disableLocalAuth: true
  }
}

module plan 'br/public:avm/res/web/serverfarm:0.1.1' = {
  name: 'plan'
  scope: rg
  params: {
    name: 'plan-cryptward-${resourceToken}'
    sku: {
      name: 'FC1'
      tier: 'FlexConsumption'
    }
    reserved: true
    location: location
    tags: tags
  }
}

// No shared keys: the host, the ledger and the queue reach storage with the bot's identity (roles in storage-access).
module storage 'br/public:avm/res/storage/storage-account:0.8.3' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'stcw${resourceToken}'
    location: location
    tags: tags
    skuName: 'Standard_LRS'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    dnsEndpointType: 'Standard'
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    minimumTlsVersion: 'TLS1_2'
    blobServices: {
      containers: [{ name: deploymentContainer }, { name: deadLetterContainer }]
    }
    queueServices: {
      queues: [{ name: workQueueName }, { name: '${workQueueName}-poison' }]
    }
    tableServices: {
      tables: [
        { name: '${tablePrefix}dedupe' }
        { name: '${tablePrefix}audit' }
        { name: '${tablePrefix}pending' }
        { name: '${tablePrefix}fights' }
      ]
    }
  }
}

module storageAccess 'app/storage-access.bicep' = {
  name: 'storage-access'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    principalId: identity.outputs.principalId
    appInsightsName: appInsights.outputs.name
  }
}

module vault 'app/vault.bicep' = {
  name: 'vault'
  scope: rg
  params: {
    name: 'kv-cw-${resourceToken}'
    location: location
    tags: tags
    workspaceId: logAnalytics.outputs.resourceId
    publicNetworkAccess: vaultPublicNetworkAccess
    readerPrincipalId: identity.outputs.principalId
    writerPrincipalId: principalId
    secrets: {
      'teams-ops-url': teamsWebhookUrl
      'webhook-audit-url': webhookUrl
      'webhook-audit-secret': webhookSecret
      'approval-key': approvalKey
      'signin-client-secret': signinClientSecret
    }
  }
}

var defaultRoutes = union(
  empty(teamsWebhookUrl) ? [] : ['teams:ops'],
  empty(webhookUrl) ? [] : ['webhook:audit']
)

module function 'app/function.bicep' = {
  name: 'function'
  scope: rg
  dependsOn: [storageAccess]
  params: {
    name: functionAppName
    location: location
    tags: union(tags, { 'azd-service-name': 'cryptward' })
    planId: plan.outputs.resourceId
    storageAccountName: storage.outputs.name
    deploymentContainer: deploymentContainer
    identityId: identity.outputs.resourceId
    identityClientId: identity.outputs.clientId
    identityPrincipalId: identity.outputs.principalId
    appInsightsConnectionString: appInsights.outputs.connectionString
    settings: {
      SWEEP_SCHEDULE: sweepSchedule
      ROTATION_SCHEDULE: rotationSchedule
      CRYPTWARD_SCOPES: scopes
      CRYPTWARD_WORK_QUEUE: workQueueName
      CRYPTWARD_TABLE_PREFIX: tablePrefix
      CRYPTWARD_OWNER_TAG: ownerTag
      CRYPTWARD_WORKSPACE_ID: logAnalytics.outputs.resourceId
      CRYPTWARD_DES_MAP: empty(desMap) ? '{}' : desMap
      CRYPTWARD_POLICY_MODES: empty(policyModes) ? '{}' : policyModes
      CRYPTWARD_ROUTES: !empty(routes) ? routes : string({ '*': defaultRoutes })
      CRYPTWARD_APPROVERS: approvers
      CRYPTWARD_SIGNIN_AUTHORITY: '${environment().authentication.loginEndpoint}${tenant().tenantId}'
      CRYPTWARD_SIGNIN_CLIENT_ID: signinClientId
    }
    // versionless: the host picks up a changed secret within a day, or at once on restart
    secretUris: {
      'teams-ops-url': '${vault.outputs.uri}secrets/teams-ops-url'
      'webhook-audit-url': '${vault.outputs.uri}secrets/webhook-audit-url'
      'webhook-audit-secret': '${vault.outputs.uri}secrets/webhook-audit-secret'
      'approval-key': '${vault.outputs.uri}secrets/approval-key'
      'signin-client-secret': '${vault.outputs.uri}secrets/signin-client-secret'
    }
  }
}

// One system topic per source subscription: at a management group, enrolment.bicep makes this subscription's too.
module events 'app/events.bicep' = if (!atGroup) {
  name: 'events'
  scope: rg
  params: {
    functionAppName: function.outputs.name
    functionName: eventFunctionName
    storageAccountName: storage.outputs.name
    deadLetterContainer: deadLetterContainer
    tags: tags
  }
}

// The identity the topics dead-letter with: every subscription's topic at a group, and every vault's topic.
module eventsIdentity 'app/events-identity.bicep' = {
  name: 'events-identity'
  scope: rg
  params: {
    name: 'id-cryptward-events-${resourceToken}'
    location: location
    tags: tags
    storageAccountName: storage.outputs.name
    deadLetterContainer: deadLetterContainer
  }
}

// Key Vault's own expiry events, from every vault of the scope: assigned at the subscription, or in each listed
// resource group (at a management group, mg/vault-events.bicep does it).
module vaultEvents 'app/vault-events.bicep' = if (!atGroup) {
  name: 'vault-events'
  params: {
    functionResourceId: '${function.outputs.id}/functions/${eventFunctionName}'
    identityResourceId: eventsIdentity.outputs.resourceId
    deadLetterStorageId: storage.outputs.resourceId
    deadLetterContainer: deadLetterContainer
    location: location
    assignAtSubscription: empty(groupsInScope)
  }
}

module vaultEventsInGroup 'app/vault-events-group.bicep' = [for group in groupsInScope: if (!atGroup) {
  name: 'vault-events-${group}'
  scope: resourceGroup(group)
  params: {
    policyDefinitionId: vaultEvents.outputs.policyDefinitionId
    roleDefinitionId: vaultEvents.outputs.roleDefinitionId
    functionResourceId: '${function.outputs.id}/functions/${eventFunctionName}'
    identityResourceId: eventsIdentity.outputs.resourceId
    deadLetterStorageId: storage.outputs.resourceId
    deadLetterContainer: deadLetterContainer
    location: location
  }
}]

module alerts 'app/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    functionAppName: function.outputs.name
    alertRoute: alertRoute
    scopes: empty(groupsInScope) ? [subscription().id] : groupIds
    tags: tags
  }
}

// The custom role: exactly infra/cryptward-role.json, at the subscription or in each listed resource group.
module role 'app/role.bicep' = {
  name: 'role'
  params: {
    principalId: identity.outputs.principalId
    assignAtSubscription: empty(groupsInScope) && !atGroup
  }
}

module roleInGroup 'app/role-assignment.bicep' = [for group in groupsInScope: {
  name: 'role-${group}'
  scope: resourceGroup(group)
  params: {
    principalId: identity.outputs.principalId
    roleDefinitionId: role.outputs.roleDefinitionId
  }
}]

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_NAME string = function.outputs.name
output CRYPTWARD_CLIENT_ID string = identity.outputs.clientId
output CRYPTWARD_VAULT_NAME string = vault.outputs.name
output CRYPTWARD_ROLE_DEFINITION_ID string = role.outputs.roleDefinitionId
output CRYPTWARD_PRINCIPAL_ID string = identity.outputs.principalId
output CRYPTWARD_EVENT_FUNCTION_ID string = '${function.outputs.id}/functions/${eventFunctionName}'
output CRYPTWARD_EVENTS_IDENTITY_ID string = eventsIdentity.outputs.resourceId
output CRYPTWARD_STORAGE_ID string = storage.outputs.resourceId
output CRYPTWARD_DEAD_LETTER_CONTAINER string = deadLetterContainer
