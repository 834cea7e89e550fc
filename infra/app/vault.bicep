// The bot's own Key Vault (webhook URLs, the approval signing key), compliant with the bot's own policies: purge
// protection, 90-day soft delete, RBAC authorization, a CanNotDelete lock, diagnostics to the workspace, owner tag.
param name string
param location string
param tags object
param workspaceId string
@allowed(['Enabled', 'Disabled'])
param publicNetworkAccess string
@description('The bot\'s identity: reads the secrets (Key Vault references).')
param readerPrincipalId string
@description('The deployer: may write the secrets later. Empty: nobody.')
param writerPrincipalId string
@secure()
@description('Secret values by name; an empty value makes no secret (its reference stays unresolved until set).')
param secrets object

var secretsUser = '4633458b-17de-408a-b874-0445c86b69e6' // Key Vault Secrets User
var secretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7' // Key Vault Secrets Officer

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  //checkov:skip=CKV_AZURE_109:no firewall by default: App Service resolves Key Vault references over the public endpoint unless VNet-integrated; access is Entra ID + RBAC only
  //checkov:skip=CKV_AZURE_189:public access is the vaultPublicNetworkAccess parameter (Disabled needs VNet integration + private endpoint, not in this template)
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enablePurgeProtection: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: publicNetworkAccess
    // Enabled by default: Flex Consumption without VNet integration resolves Key Vault references over the public
    // endpoint, and Key Vault's trusted-services bypass does not cover App Service. Access is by Entra ID + RBAC
    // only (two role assignments below, no access policies); for a private vault set vaultPublicNetworkAccess to
    // Disabled and add VNet integration + a private endpoint.
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource lock 'Microsoft.Authorization/locks@2020-05-01' = {
  name: 'cryptward-cannot-delete'
  scope: vault
  properties: {
    level: 'CanNotDelete'
    notes: 'Cryptward\'s own vault (kv-delete-lock). Remove this lock before `azd down`.'
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'cryptward'
  scope: vault
  properties: {
    workspaceId: workspaceId
    logs: [{ categoryGroup: 'audit', enabled: true }, { categoryGroup: 'allLogs', enabled: true }]
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}

resource stored 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [for secret in items(secrets): if (!empty(secret.value)) {
  //checkov:skip=CKV_AZURE_41:webhook URLs and the signing key are rotated by their owners; an expiry would silently stop notices and approvals
  parent: vault
  name: secret.key
  properties: {
    value: secret.value
    contentType: 'text/plain'
    attributes: { enabled: true }
  }
}]

resource readSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, readerPrincipalId, secretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', secretsUser)
    principalId: readerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource writeSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(writerPrincipalId)) {
  name: guid(vault.id, writerPrincipalId, secretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', secretsOfficer)
    principalId: writerPrincipalId
    principalType: 'User'
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
