-- A Dokploy v0.13-shaped schema for tests: after migration 0041 (server.serverStatus) and
-- before 0049 (preview deployments). Compared with v0.24 it also lacks the table
-- preview_deployments and domain.previewDeploymentId, the domainType label 'preview',
-- the certificateType label 'custom' and domain.customCertResolver (v0.20.0), and
-- domain.internalPath and stripPath (v0.24.0). Ownership predates the v0.19.0 auth
-- rework: auth -> admin -> project. Non-routing columns are a representative subset.

CREATE TYPE "applicationStatus" AS ENUM ('idle', 'running', 'done', 'error');
CREATE TYPE "buildType" AS ENUM ('dockerfile', 'heroku_buildpacks', 'paketo_buildpacks', 'nixpacks', 'static');
CREATE TYPE "certificateType" AS ENUM ('letsencrypt', 'none');
CREATE TYPE "composeType" AS ENUM ('docker-compose', 'stack');
CREATE TYPE "domainType" AS ENUM ('compose', 'application');
CREATE TYPE "protocolType" AS ENUM ('tcp', 'udp');
CREATE TYPE "serverStatus" AS ENUM ('active', 'inactive');
CREATE TYPE "sourceType" AS ENUM ('docker', 'git', 'github', 'gitlab', 'bitbucket', 'drop');
CREATE TYPE "sourceTypeCompose" AS ENUM ('git', 'github', 'gitlab', 'bitbucket', 'raw');

CREATE TABLE "auth" (
    "id" text PRIMARY KEY,
    "email" text NOT NULL UNIQUE,
    "password" text NOT NULL,
    "createdAt" text NOT NULL
);

CREATE TABLE "admin" (
    "adminId" text PRIMARY KEY,
    "authId" text NOT NULL REFERENCES "auth" ("id") ON DELETE CASCADE,
    "host" text,
    "certificateType" "certificateType" NOT NULL DEFAULT 'none',
    "createdAt" text NOT NULL
);

CREATE TABLE "project" (
    "projectId" text PRIMARY KEY,
    "name" text NOT NULL,
    "description" text,
    "createdAt" text NOT NULL,
    "adminId" text NOT NULL REFERENCES "admin" ("adminId") ON DELETE CASCADE
);

CREATE TABLE "ssh-key" (
    "sshKeyId" text PRIMARY KEY,
    "privateKey" text NOT NULL DEFAULT '',
    "publicKey" text NOT NULL,
    "name" text NOT NULL,
    "createdAt" text NOT NULL,
    "adminId" text REFERENCES "admin" ("adminId") ON DELETE CASCADE
);

CREATE TABLE "server" (
    "serverId" text PRIMARY KEY,
    "name" text NOT NULL,
    "description" text,
    "ipAddress" text NOT NULL,
    "port" integer NOT NULL,
    "username" text NOT NULL DEFAULT 'root',
    "appName" text NOT NULL,
    "enableDockerCleanup" boolean NOT NULL DEFAULT false,
    "createdAt" text NOT NULL,
    "adminId" text NOT NULL REFERENCES "admin" ("adminId") ON DELETE CASCADE,
    "serverStatus" "serverStatus" NOT NULL DEFAULT 'active',
    "sshKeyId" text REFERENCES "ssh-key" ("sshKeyId") ON DELETE SET NULL
);

CREATE TABLE "application" (
    "applicationId" text PRIMARY KEY,
    "name" text NOT NULL,
    "appName" text NOT NULL UNIQUE,
    "description" text,
    "env" text,
    "buildArgs" text,
    "enabled" boolean,
    "command" text,
    "refreshToken" text,
    "sourceType" "sourceType" NOT NULL DEFAULT 'github',
    "repository" text,
    "owner" text,
    "branch" text,
    "username" text,
    "password" text,
    "dockerImage" text,
    "registryUrl" text,
    "customGitUrl" text,
    "customGitSSHKeyId" text REFERENCES "ssh-key" ("sshKeyId") ON DELETE SET NULL,
    "healthCheckSwarm" json,
    "labelsSwarm" json,
    "networkSwarm" json,
    "replicas" integer NOT NULL DEFAULT 1,
    "applicationStatus" "applicationStatus" NOT NULL DEFAULT 'idle',
    "buildType" "buildType" NOT NULL DEFAULT 'nixpacks',
    "createdAt" text NOT NULL,
    "projectId" text NOT NULL REFERENCES "project" ("projectId") ON DELETE CASCADE,
    "serverId" text REFERENCES "server" ("serverId") ON DELETE CASCADE
);

CREATE TABLE "compose" (
    "composeId" text PRIMARY KEY,
    "name" text NOT NULL,
    "appName" text NOT NULL,
    "description" text,
    "env" text,
    "composeFile" text NOT NULL DEFAULT '',
    "refreshToken" text,
    "sourceType" "sourceTypeCompose" NOT NULL DEFAULT 'github',
    "composeType" "composeType" NOT NULL DEFAULT 'docker-compose',
    "repository" text,
    "command" text NOT NULL DEFAULT '',
    "composePath" text NOT NULL DEFAULT './docker-compose.yml',
    "suffix" text NOT NULL DEFAULT '',
    "randomize" boolean NOT NULL DEFAULT false,
    "composeStatus" "applicationStatus" NOT NULL DEFAULT 'idle',
    "projectId" text NOT NULL REFERENCES "project" ("projectId") ON DELETE CASCADE,
    "createdAt" text NOT NULL,
    "serverId" text REFERENCES "server" ("serverId") ON DELETE CASCADE
);

CREATE TABLE "domain" (
    "domainId" text PRIMARY KEY,
    "host" text NOT NULL,
    "https" boolean NOT NULL DEFAULT false,
    "port" integer DEFAULT 3000,
    "path" text DEFAULT '/',
    "serviceName" text,
    "domainType" "domainType" DEFAULT 'application',
    "uniqueConfigKey" serial NOT NULL,
    "createdAt" text NOT NULL,
    "composeId" text REFERENCES "compose" ("composeId") ON DELETE CASCADE,
    "applicationId" text REFERENCES "application" ("applicationId") ON DELETE CASCADE,
    "certificateType" "certificateType" NOT NULL DEFAULT 'none'
);

CREATE TABLE "redirect" (
    "redirectId" text PRIMARY KEY,
    "regex" text NOT NULL,
    "replacement" text NOT NULL,
    "permanent" boolean NOT NULL DEFAULT false,
    "uniqueConfigKey" serial NOT NULL,
    "createdAt" text NOT NULL,
    "applicationId" text NOT NULL REFERENCES "application" ("applicationId") ON DELETE CASCADE
);

CREATE TABLE "security" (
    "securityId" text PRIMARY KEY,
    "username" text NOT NULL,
    "password" text NOT NULL,
    "createdAt" text NOT NULL,
    "applicationId" text NOT NULL REFERENCES "application" ("applicationId") ON DELETE CASCADE,
    CONSTRAINT "security_username_applicationId_unique" UNIQUE ("username", "applicationId")
);

CREATE TABLE "port" (
    "portId" text PRIMARY KEY,
    "publishedPort" integer NOT NULL,
    "targetPort" integer NOT NULL,
    "protocol" "protocolType" NOT NULL,
    "applicationId" text NOT NULL REFERENCES "application" ("applicationId") ON DELETE CASCADE
);

CREATE TABLE "certificate" (
    "certificateId" text PRIMARY KEY,
    "name" text NOT NULL,
    "certificateData" text NOT NULL,
    "privateKey" text NOT NULL,
    "certificatePath" text NOT NULL UNIQUE,
    "autoRenew" boolean,
    "adminId" text REFERENCES "admin" ("adminId") ON DELETE CASCADE,
    "serverId" text REFERENCES "server" ("serverId") ON DELETE CASCADE
);
