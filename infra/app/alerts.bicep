// What wakes the bot when it matters most, even if an event was lost: activity-log alerts on a vault deleted, and on
// a vault or a disk encryption set changed (purge protection, keys), firing the common alert schema at the
// function's HTTP trigger through an action group webhook.
param functionAppName string
param alertRoute string
@description('The subscription, or the resource groups, the alerts watch.')
param scopes array
param tags object

resource app 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

// The function key: the HTTP trigger has AuthLevel.FUNCTION (function_app.py). Read at deployment time, so the
// code must be deployed once (azd deploy) before the key exists; `azd up` provisions then deploys, and a second
// `azd provision` picks the key up.
var functionKey = listKeys('${app.id}/host/default', '2024-04-01').functionKeys.default

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-cryptward'
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'cryptward'
    enabled: true
    webhookReceivers: [
      {
        name: 'cryptward'
        serviceUri: 'https://${app.properties.defaultHostName}/api/${alertRoute}?code=${functionKey}'
        useCommonAlertSchema: true
      }
    ]
  }
}

var rules = {
  'vault-deleted': {
    description: 'A key vault was deleted: Cryptward records it and tells the owners (soft delete keeps it recoverable).'
    operationName: 'Microsoft.KeyVault/vaults/delete'
  }
  'vault-changed': {
    description: 'A key vault was written (purge protection, network, access): Cryptward checks it at once.'
    operationName: 'Microsoft.KeyVault/vaults/write'
  }
  'des-changed': {
    description: 'A disk encryption set was written (key, auto-rotation): Cryptward checks it at once.'
    operationName: 'Microsoft.Compute/diskEncryptionSets/write'
  }
}

resource alerts 'Microsoft.Insights/activityLogAlerts@2020-10-01' = [for rule in items(rules): {
  name: 'cryptward-${rule.key}'
  location: 'Global'
  tags: tags
  properties: {
    enabled: true
    description: rule.value.description
    scopes: scopes
    condition: {
      allOf: [
        { field: 'category', equals: 'Administrative' }
        { field: 'operationName', equals: rule.value.operationName }
        { field: 'status', equals: 'Succeeded' }
      ]
    }
    actions: {
      actionGroups: [{ actionGroupId: actionGroup.id }]
    }
  }
}]
