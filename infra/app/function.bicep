// The function app on Flex Consumption (FC1), Python 3.11, running as the bot's user-assigned identity.
// App settings: every name the code reads (local.settings.json), identity-based AzureWebJobsStorage (no keys), and
// the bot vault's secrets as Key Vault references, which the host resolves with the same identity.
param name string
param location string
param tags object
param planId string
param storageAccountName string
param deploymentContainer string
param identityId string
param identityClientId string
param identityPrincipalId string
param appInsightsConnectionString string
@description('The CRYPTWARD_* and schedule settings main.bicep computes.')
param settings object
@description('Secret URIs of the bot vault (vault.bicep), by secret name.')
param secretUris object
param instanceMemoryMB int = 2048
param maximumInstanceCount int = 40

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  //checkov:skip=CKV_AZURE_222:Event Grid and the action group's webhook call the function over its public endpoint; each call carries a function key or Event Grid's own authentication
  //checkov:skip=CKV_AZURE_17:Event Grid and action group webhooks present no client certificate
  //checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero on demand; always-ready instances would cost money at idle for a bot that sleeps
  //checkov:skip=CKV_AZURE_213:no instance runs at idle to probe on Flex Consumption; /api/health is the app's own readiness report
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: planId
    httpsOnly: true
    clientCertEnabled: false
    keyVaultReferenceIdentity: identityId // resolve @Microsoft.KeyVault(...) with the bot's identity
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainer}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        alwaysReady: [] // nothing kept warm: idle costs nothing; a cold start is fine for events and timers
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
  }
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  //checkov:skip=CKV_AZURE_13:triggers authenticate with function keys and Event Grid's handshake; Easy Auth would refuse them
  //checkov:skip=CKV_AZURE_63:not the web config: checkov reads this appsettings resource as siteConfig; logs go to Application Insights
  //checkov:skip=CKV_AZURE_65:not the web config: checkov reads this appsettings resource as siteConfig
  //checkov:skip=CKV_AZURE_66:not the web config: checkov reads this appsettings resource as siteConfig; requests are traced in Application Insights
  //checkov:skip=CKV_AZURE_80:not the web config: a Python app has no .NET Framework version
  //checkov:skip=CKV_AZURE_88:Flex Consumption has no Azure Files content share; the package is in a blob container
  //checkov:skip=CKV_AZURE_222:not the web config: public access is set on the site (see above)
  parent: app
  name: 'appsettings'
  properties: {
    // the host: storage through the identity (AzureWebJobsStorage has no connection string), telemetry through it too
    AzureWebJobsStorage__accountName: storageAccountName
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
    // the bot: DefaultAzureCredential picks the user-assigned identity AZURE_CLIENT_ID names
    AZURE_CLIENT_ID: identityClientId
    AZURE_SUBSCRIPTION_ID: subscription().subscriptionId
    CRYPTWARD_BOT_CLIENT_ID: identityClientId
    CRYPTWARD_BOT_OBJECT_ID: identityPrincipalId
    // names as in local.settings.json (remediations/settings.py, intake.py, workqueue.py, ledger.py)
    SWEEP_SCHEDULE: settings.SWEEP_SCHEDULE
    ROTATION_SCHEDULE: settings.ROTATION_SCHEDULE
    NOTICES_SCHEDULE: '0 */15 * * * *' // notices kept after failing are tried again (backoff 5 min to 6 h)
    CRYPTWARD_PUBLIC_URL: 'https://${app.properties.defaultHostName}' // where approve / deny links point
    CRYPTWARD_SCOPES: settings.CRYPTWARD_SCOPES
    CRYPTWARD_WORK_QUEUE: settings.CRYPTWARD_WORK_QUEUE
    CRYPTWARD_TABLE_PREFIX: settings.CRYPTWARD_TABLE_PREFIX
    CRYPTWARD_OWNER_TAG: settings.CRYPTWARD_OWNER_TAG
    CRYPTWARD_EXEMPTION_TAG: 'cryptward-exempt'
    CRYPTWARD_WORKSPACE_ID: settings.CRYPTWARD_WORKSPACE_ID
    // the action group app/alerts.bicep creates beside the app: kv-admin-alerts' alerts notify it (its webhook is the bot)
    CRYPTWARD_ALERT_ACTION_GROUP: resourceId('Microsoft.Insights/actionGroups', 'ag-cryptward')
    CRYPTWARD_DES_MAP: settings.CRYPTWARD_DES_MAP
    CRYPTWARD_LOCK_NAME: 'cryptward-cannot-delete'
    CRYPTWARD_DIAGNOSTIC_SETTING_NAME: 'cryptward'
    CRYPTWARD_POLICY_MODES: settings.CRYPTWARD_POLICY_MODES
    CRYPTWARD_POLLING_INTERVAL: '' // azure-core's own pacing (Retry-After) in Azure
    CRYPTWARD_RETAIL_PRICES_URL: '' // kv-defender's notice: https://prices.azure.com/api/retail/prices (no credential sent)
    CRYPTWARD_ROUTES: settings.CRYPTWARD_ROUTES
    CRYPTWARD_DEBOUNCE_SECONDS: '30'
    CRYPTWARD_FIGHT_THRESHOLD: '3'
    CRYPTWARD_FIGHT_WINDOW_SECONDS: '3600'
    CRYPTWARD_WORK_LOCK_SECONDS: '300'
    CRYPTWARD_ALERT_KEY: '' // `cryptward serve` only: in Azure the host checks its own function key
    // approvals: who may decide, and the approval page's Entra ID sign-in (remediations/triggers/signin.py)
    CRYPTWARD_APPROVERS: settings.CRYPTWARD_APPROVERS
    CRYPTWARD_SIGNIN: 'entra'
    CRYPTWARD_SIGNIN_AUTHORITY: settings.CRYPTWARD_SIGNIN_AUTHORITY
    CRYPTWARD_SIGNIN_CLIENT_ID: settings.CRYPTWARD_SIGNIN_CLIENT_ID
    // secrets: Key Vault references (remediations/notices/delivery.py: CRYPTWARD_DEST_<NAME>_URL / _SECRET)
    CRYPTWARD_DEST_OPS_URL: '@Microsoft.KeyVault(SecretUri=${secretUris['teams-ops-url']})'
    CRYPTWARD_DEST_AUDIT_URL: '@Microsoft.KeyVault(SecretUri=${secretUris['webhook-audit-url']})'
    CRYPTWARD_DEST_AUDIT_SECRET: '@Microsoft.KeyVault(SecretUri=${secretUris['webhook-audit-secret']})'
    CRYPTWARD_APPROVAL_KEY: '@Microsoft.KeyVault(SecretUri=${secretUris['approval-key']})'
    CRYPTWARD_SIGNIN_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${secretUris['signin-client-secret']})'
  }
}

output name string = app.name
output id string = app.id
output hostName string = app.properties.defaultHostName
