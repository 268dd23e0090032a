"""Synthetic policies: named locations, authentication strengths, Conditional Access and the tenant-wide policies."""

from __future__ import annotations

from typing import Any

from entra_gitops.emulator.synthetic_base import TAG_LOCATION, TAG_POLICY, Draft, ids
from entra_gitops.emulator.synthetic_directory import Groups, People
from entra_gitops.emulator.synthetic_tables import Strength, tables

# Copies beyond the templates cycle through these states, as pilots of a policy do.
_PILOT_STATES = ("enabledForReportingButNotEnforced", "disabled", "enabled")


def locations(draft: Draft, n: int) -> list[dict[str, Any]]:
    t = tables()
    rng = draft.rng
    out = []
    for i, lid in enumerate(ids(TAG_LOCATION, n)):
        created = draft.when()
        base = {"id": lid, "createdDateTime": created, "modifiedDateTime": created}
        if i % 4 == 3:
            blocked = i % 8 == 7
            pool = t.blocked_countries if blocked else t.countries
            out.append(
                {
                    "@odata.type": "#microsoft.graph.countryNamedLocation",
                    **base,
                    "displayName": f"{'Blocked' if blocked else 'Allowed'} countries {i // 4 + 1}",
                    "countriesAndRegions": sorted(rng.sample(pool, rng.randint(2, 5))),
                    "includeUnknownCountriesAndRegions": blocked,
                    "countryLookupMethod": "clientIpAddress",
                }
            )
        else:
            # Benchmarking (RFC 2544) and documentation (RFC 3849) ranges: never real networks.
            ranges = [
                {
                    "@odata.type": "#microsoft.graph.iPv4CidrRange",
                    "cidrAddress": f"198.{18 + (i >> 8) % 2}.{i % 256}.0/24",
                }
            ]
            if i % 2 == 0:
                ranges.append(
                    {"@odata.type": "#microsoft.graph.iPv6CidrRange", "cidrAddress": f"2001:db8:{i % 65536:x}::/48"}
                )
            out.append(
                {
                    "@odata.type": "#microsoft.graph.ipNamedLocation",
                    **base,
                    "displayName": f"Office network {i + 1}",
                    "isTrusted": i % 3 != 2,
                    "ipRanges": ranges,
                }
            )
    return out


def strengths() -> list[dict[str, Any]]:
    return [_strength(s) for s in tables().authentication_strengths]


def _strength(strength: Strength) -> dict[str, Any]:
    return {
        "id": strength.id,
        "createdDateTime": "2021-12-01T00:00:00Z",
        "modifiedDateTime": "2021-12-01T00:00:00Z",
        "displayName": strength.name,
        "description": strength.description,
        "policyType": "builtIn",
        "requirementsSatisfied": "mfa",
        "allowedCombinations": list(strength.combinations),
    }


def conditional_access(
    draft: Draft, n: int, people: People, groups: Groups, location_ids: list[str]
) -> list[dict[str, Any]]:
    t = tables()
    rng = draft.rng
    break_glass = people.ids[:2]
    exclusions = groups.ids[:1]
    templates = t.conditional_access_templates
    strength_by_id = {s.id: s for s in t.authentication_strengths}
    out = []
    for i, pid in enumerate(ids(TAG_POLICY, n)):
        name, state, cond, grant, frequency = templates[i % len(templates)]
        if i >= len(templates):
            state = _PILOT_STATES[i % len(_PILOT_STATES)]
        number = f"CA{i + 1:03d}"
        users: dict[str, Any] = {
            "includeUsers": ["All"],
            "excludeUsers": list(break_glass),
            "includeGroups": [],
            "excludeGroups": list(exclusions),
            "includeRoles": [],
            "excludeRoles": [],
            "includeGuestsOrExternalUsers": None,
            "excludeGuestsOrExternalUsers": None,
        }
        if cond.get("roles"):
            users["includeUsers"] = []
            users["includeRoles"] = [role.id for role in t.directory_roles]
            users["includeGroups"] = [g["id"] for g in groups.objects if g.get("isAssignableToRole")][:3]
        elif i >= len(templates) and len(groups.ids) > 1:
            # Copies beyond the templates target a slice of the organisation, as pilots do.
            users["includeUsers"] = []
            users["includeGroups"] = [groups.ids[rng.randrange(1, len(groups.ids))]]
        locations = None
        if cond.get("locations") and location_ids:
            excluded = [location_ids[rng.randrange(len(location_ids))], "AllTrusted"]
            locations = {"includeLocations": ["All"], "excludeLocations": excluded}
        strength = _strength(strength_by_id[grant["strength"]]) if "strength" in grant else None
        session = None
        if frequency:
            session = {
                "disableResilienceDefaults": None,
                "applicationEnforcedRestrictions": None,
                "cloudAppSecurity": None,
                "persistentBrowser": None,
                "secureSignInSession": None,
                "signInFrequency": {
                    **frequency,
                    "authenticationType": "primaryAndSecondaryAuthentication",
                    "isEnabled": True,
                },
            }
        created = draft.when()
        out.append(
            {
                "id": pid,
                "templateId": None,
                "displayName": f"{number} - {name}",
                "createdDateTime": created,
                "modifiedDateTime": max(created, draft.when()),
                "state": state,
                "conditions": {
                    "userRiskLevels": list(cond.get("userRiskLevels", ())),
                    "signInRiskLevels": list(cond.get("signInRiskLevels", ())),
                    "clientAppTypes": list(cond.get("clientAppTypes", ("all",))),
                    "servicePrincipalRiskLevels": [],
                    "platforms": None,
                    "locations": locations,
                    "devices": None,
                    "clientApplications": None,
                    "applications": {
                        "includeApplications": ["Office365" if cond.get("office") else "All"],
                        "excludeApplications": [],
                        "includeUserActions": [],
                        "includeAuthenticationContextClassReferences": [],
                        "applicationFilter": None,
                    },
                    "users": users,
                },
                "grantControls": {
                    "operator": grant.get("operator", "OR"),
                    "builtInControls": list(grant.get("builtInControls", ())),
                    "customAuthenticationFactors": [],
                    "termsOfUse": [],
                    "authenticationStrength": strength,
                },
                "sessionControls": session,
            }
        )
    return out


def methods_policy(groups: Groups) -> dict[str, Any]:
    def target(tid: str, **extra: Any) -> dict[str, Any]:
        return {"targetType": "group", "id": tid, "isRegistrationRequired": False, **extra}

    # The passkey pilot is a real group when there is one; "all_users" is Graph's built-in target.
    pilot = groups.ids[-1] if len(groups.ids) > 1 else "all_users"
    return {
        "id": "authenticationMethodsPolicy",
        "displayName": "Authentication Methods Policy",
        "description": "The tenant-wide policy that controls which authentication methods are allowed in the tenant, "
        "authentication method registration requirements, and self-service password reset settings",
        "lastModifiedDateTime": "2026-09-01T08:12:00Z",
        "policyVersion": "1.5",
        "reconfirmationInDays": 0,
        "policyMigrationState": "migrationComplete",
        "authenticationMethodConfigurations": [
            {
                "@odata.type": "#microsoft.graph.emailAuthenticationMethodConfiguration",
                "id": "Email",
                "state": "enabled",
                "allowExternalIdToUseEmailOtp": "default",
                "excludeTargets": [],
                "includeTargets": [target("all_users")],
            },
            {
                "@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration",
                "id": "Fido2",
                "state": "enabled",
                "isAttestationEnforced": True,
                "isSelfServiceRegistrationAllowed": True,
                "keyRestrictions": {"isEnforced": False, "enforcementType": "block", "aaGuids": []},
                "excludeTargets": [],
                "includeTargets": [target(pilot)],
            },
            {
                "@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethodConfiguration",
                "id": "MicrosoftAuthenticator",
                "state": "enabled",
                "isSoftwareOathEnabled": False,
                "excludeTargets": [],
                "includeTargets": [target("all_users", authenticationMode="any")],
            },
            {
                "@odata.type": "#microsoft.graph.voiceAuthenticationMethodConfiguration",
                "id": "Voice",
                "state": "disabled",
                "isOfficePhoneAllowed": False,
                "excludeTargets": [],
                "includeTargets": [target("all_users")],
            },
            {
                "@odata.type": "#microsoft.graph.smsAuthenticationMethodConfiguration",
                "id": "Sms",
                "state": "disabled",
                "excludeTargets": [],
                "includeTargets": [target("all_users", isUsableForSignIn=False)],
            },
            {
                "@odata.type": "#microsoft.graph.softwareOathAuthenticationMethodConfiguration",
                "id": "SoftwareOath",
                "state": "enabled",
                "excludeTargets": [],
                "includeTargets": [target("all_users")],
            },
            {
                "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration",
                "id": "TemporaryAccessPass",
                "state": "enabled",
                "defaultLifetimeInMinutes": 60,
                "defaultLength": 8,
                "minimumLifetimeInMinutes": 60,
                "maximumLifetimeInMinutes": 480,
                "isUsableOnce": True,
                "excludeTargets": [],
                "includeTargets": [target("all_users")],
            },
            {
                "@odata.type": "#microsoft.graph.x509CertificateAuthenticationMethodConfiguration",
                "id": "X509Certificate",
                "state": "disabled",
                "certificateUserBindings": [
                    {
                        "x509CertificateField": "PrincipalName",
                        "userProperty": "onPremisesUserPrincipalName",
                        "priority": 1,
                        "trustAffinityLevel": "low",
                    },
                    {
                        "x509CertificateField": "RFC822Name",
                        "userProperty": "userPrincipalName",
                        "priority": 2,
                        "trustAffinityLevel": "low",
                    },
                ],
                "authenticationModeConfiguration": {
                    "x509CertificateAuthenticationDefaultMode": "x509CertificateSingleFactor",
                    "x509CertificateDefaultRequiredAffinityLevel": "low",
                    "rules": [],
                },
                "excludeTargets": [],
                "includeTargets": [target("all_users")],
            },
        ],
    }


def authorization_policy() -> dict[str, Any]:
    return {
        "id": "authorizationPolicy",
        "displayName": "Authorization Policy",
        "description": "Used to manage authorization related settings across the company.",
        "allowInvitesFrom": "adminsAndGuestInviters",
        "allowedToSignUpEmailBasedSubscriptions": False,
        "allowedToUseSSPR": True,
        "allowEmailVerifiedUsersToJoinOrganization": False,
        "blockMsolPowerShell": True,
        "guestUserRoleId": "10dae51f-b6af-4016-8d66-8c2a99b929b3",
        "defaultUserRolePermissions": {
            "allowedToCreateApps": False,
            "allowedToCreateSecurityGroups": False,
            "allowedToCreateTenants": False,
            "allowedToReadBitlockerKeysForOwnedDevice": True,
            "allowedToReadOtherUsers": True,
            "permissionGrantPoliciesAssigned": ["ManagePermissionGrantsForSelf.microsoft-user-default-low"],
        },
    }
