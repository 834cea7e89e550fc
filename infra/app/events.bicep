// What wakes the bot on a change: the subscription's Event Grid system topic, with one event subscription to the
// Event Grid triggered function, filtered to the operations the bot handles. Events it cannot deliver (after the
// retries) are dead-lettered to a blob container, written with the topic's own identity.
param functionAppName string
param functionName string
param storageAccountName string
param deadLetterContainer string
param tags object
param maxDeliveryAttempts int = 10
param eventTimeToLiveInMinutes int = 1440

var blobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // Storage Blob Data Contributor

resource app 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: 'evgt-cryptward-${uniqueString(subscription().id)}'
  location: 'global'
  tags: tags
  identity: { type: 'SystemAssigned' }
  properties: {
    source: subscription().id
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, topic.id, blobDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataContributor)
    principalId: topic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource toFunction 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: topic
  name: 'cryptward'
  dependsOn: [deadLetterWriter]
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${app.id}/functions/${functionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Resources.ResourceWriteSuccess'
        'Microsoft.Resources.ResourceActionSuccess'
        'Microsoft.Resources.ResourceDeleteSuccess'
      ]
      enableAdvancedFilteringOnArrays: true
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.operationName'
          values: [
            'Microsoft.KeyVault/vaults/write'
            'Microsoft.KeyVault/vaults/accessPolicies/write'
            'Microsoft.KeyVault/vaults/keys/write'
            'Microsoft.Compute/disks/write'
            'Microsoft.Compute/diskEncryptionSets/write'
            'Microsoft.Compute/virtualMachines/write'
            'Microsoft.Compute/virtualMachines/deallocate/action'
            'Microsoft.Compute/virtualMachineScaleSets/write'
            'Microsoft.Compute/snapshots/write'
            'Microsoft.Compute/images/write'
            'Microsoft.Resources/tags/write'
            'Microsoft.Authorization/locks/write'
            'Microsoft.Authorization/locks/delete'
            'Microsoft.Insights/diagnosticSettings/write'
            'Microsoft.Insights/diagnosticSettings/delete'
          ]
        }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: { type: 'SystemAssigned' }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: deadLetterContainer
        }
      }
    }
  }
}

output topicName string = topic.name
