"""The Falcon application factory: the only place the API's parts are put together."""

from __future__ import annotations

from dataclasses import dataclass

import falcon
import falcon.media

from trove_svc.api import (
    account_resources,
    backup_resources,
    catalog_resources,
    compute_resources,
    configuration_resources,
    errors,
    media,
    middleware,
    openapi,
    resources,
    service_resources,
)
from trove_svc.bus.client import Bus
from trove_svc.bus.messages import GuestClient, TaskManagerClient
from trove_svc.domain.accounts import AccountService
from trove_svc.domain.backups import BackupService
from trove_svc.domain.configurations import ConfigurationService
from trove_svc.domain.instances import InstanceService
from trove_svc.domain.schedules import ScheduleService
from trove_svc.process.settings import Settings
from trove_svc.security.keys import ServiceKeys
from trove_svc.security.keystone import KeystoneTokens
from trove_svc.security.tokens import LocalTokens

P = "/v1.0/{project_id}"


@dataclass(frozen=True)
class Route:
    template: str
    resource: object
    suffix: str | None = None


def routes(settings: Settings, bus: Bus, keys: ServiceKeys) -> list[Route]:
    """Every route the API serves; the app and its OpenAPI document are built from this."""
    instances = InstanceService(settings, TaskManagerClient(bus), keys)
    accounts = AccountService(settings, instances, GuestClient(bus, settings.call_timeout))
    versions = f"{P}/datastores/versions/{{version_id}}"
    named_version = f"{P}/datastores/{{datastore}}/versions/{{version}}"
    instances_resource = resources.Instances(instances)
    backups = BackupService(settings, TaskManagerClient(bus), instances)
    schedules = ScheduleService(settings, instances)
    i = f"{P}/instances/{{instance_id}}"
    c = f"{P}/configurations/{{configuration_id}}"
    groups = ConfigurationService(settings, TaskManagerClient(bus))
    guest = GuestClient(bus, settings.call_timeout)
    return [
        Route("/", service_resources.Versions()),
        Route("/v1.0", service_resources.Version()),
        Route("/healthcheck", service_resources.HealthCheck(settings, bus)),
        Route("/metrics", service_resources.Metrics()),
        Route(f"{P}/flavors", catalog_resources.Flavors()),
        Route(f"{P}/flavors/{{flavor_id}}", catalog_resources.FlavorItem()),
        Route(f"{P}/datastores", catalog_resources.Datastores()),
        Route(f"{P}/datastores/{{datastore}}", catalog_resources.DatastoreItem()),
        Route(f"{P}/datastores/{{datastore}}/versions", catalog_resources.DatastoreVersions()),
        Route(named_version, catalog_resources.DatastoreVersionItem()),
        Route(f"{named_version}/parameters", catalog_resources.NamedVersionParameters()),
        Route(f"{named_version}/parameters/{{name}}", catalog_resources.NamedVersionParameter()),
        Route(versions, catalog_resources.DatastoreVersionById()),
        Route(f"{versions}/flavors", catalog_resources.VersionFlavors()),
        Route(f"{versions}/parameters", catalog_resources.VersionParameters()),
        Route(f"{versions}/parameters/{{name}}", catalog_resources.VersionParameter()),
        Route(f"{P}/limits", catalog_resources.Limits(settings)),
        Route(f"{P}/mgmt/instances", resources.MgmtInstances(instances)),
        Route(f"{P}/mgmt/instances/{{instance_id}}", resources.MgmtInstance(instances)),
        Route(f"{P}/mgmt/hosts", compute_resources.MgmtHosts(settings)),
        Route(f"{P}/instances", instances_resource),
        Route(f"{P}/instances/detail", instances_resource, suffix="detail"),
        Route(i, resources.InstanceItem(instances, groups)),
        Route(f"{i}/action", resources.InstanceAction(instances)),
        Route(f"{i}/tasks", resources.InstanceTasks(instances)),
        Route(f"{i}/tasks/{{task_id}}", resources.InstanceTask(instances)),
        Route(f"{i}/databases", account_resources.Databases(accounts)),
        Route(f"{i}/databases/{{name}}", account_resources.Database(accounts)),
        Route(f"{i}/users", account_resources.Users(accounts)),
        Route(f"{i}/users/{{user}}", account_resources.User(accounts)),
        Route(f"{i}/users/{{user}}/databases", account_resources.UserAccess(accounts)),
        Route(
            f"{i}/users/{{user}}/databases/{{database}}", account_resources.UserAccessItem(accounts)
        ),
        Route(f"{i}/root", account_resources.Root(accounts)),
        Route(f"{P}/backups", backup_resources.Backups(backups)),
        Route(f"{P}/backups/{{backup_id}}", backup_resources.BackupItem(backups)),
        Route(f"{i}/backups", backup_resources.InstanceBackups(backups)),
        Route(f"{P}/backup_strategies", backup_resources.BackupStrategies(instances, settings)),
        Route(f"{i}/schedules", backup_resources.Schedules(schedules)),
        Route(f"{i}/schedules/{{schedule_id}}", backup_resources.ScheduleItem(schedules)),
        Route(f"{P}/configurations", configuration_resources.Configurations(groups)),
        Route(f"{c}", configuration_resources.ConfigurationItem(groups)),
        Route(f"{c}/instances", configuration_resources.ConfigurationInstances(groups)),
        Route(
            f"{i}/configuration",
            configuration_resources.InstanceConfiguration(instances, guest),
        ),
    ]


def authenticator(settings: Settings) -> middleware.Authenticator:
    """Keystone when TROVE_SVC_KEYSTONE_URL is set, else the local tokens."""
    if settings.keystone_url:
        return KeystoneTokens(
            settings.keystone_url,
            settings.keystone_cache_seconds,
            settings.admin_role,
            settings.clock,
        )
    return LocalTokens(settings.clock)


def create_app(
    settings: Settings, bus: Bus, keys: ServiceKeys
) -> falcon.App[falcon.Request, falcon.Response]:
    """Build the API; the store must already be open (`trove_svc.store.db.open_store`)."""
    app: falcon.App[falcon.Request, falcon.Response] = falcon.App(
        middleware=[
            middleware.RequestId(),
            middleware.BodySizeLimit(settings.max_body_bytes),
            middleware.TokenAuth(authenticator(settings)),
        ],
    )
    app.req_options.strip_url_path_trailing_slash = True
    # JSON only, its depth checked before it is parsed: any other body answers 415.
    app.req_options.media_handlers = falcon.media.Handlers(
        {falcon.MEDIA_JSON: media.LimitedJSON(settings.max_body_depth)}
    )
    served = routes(settings, bus, keys)
    unbuilt = not_built()
    errors.install(app, [r.template for r in served + unbuilt])
    for route in served + unbuilt:
        app.add_route(route.template, route.resource, suffix=route.suffix)
    app.add_route("/openapi.json", openapi.OpenApiDocument(openapi.document(served)))
    return app


def not_built() -> list[Route]:
    """Trove's routes that trove-svc does not build yet: 501, naming the feature. They are
    not in the OpenAPI document, which lists what works."""
    i = f"{P}/instances/{{instance_id}}"
    features = {
        "guest logs": [f"{i}/log"],
        "clusters": [
            f"{P}/clusters",
            f"{P}/clusters/{{cluster_id}}",
            f"{P}/clusters/{{cluster_id}}/instances/{{member_id}}",
        ],
        "modules": [
            f"{P}/modules",
            f"{P}/modules/{{module_id}}",
            f"{P}/modules/{{module_id}}/instances",
            f"{i}/modules",
            f"{i}/modules/{{module_id}}",
        ],
        "volume types": [
            f"{P}/volume-types",
            f"{P}/volume-types/{{volume_type_id}}",
            f"{P}/datastores/{{datastore}}/versions/{{version}}/volume-types",
        ],
        "quota management": [f"{P}/mgmt/quotas/{{tenant_id}}"],
    }
    return [
        Route(template, service_resources.NotBuilt(feature))
        for feature, templates in features.items()
        for template in templates
    ]
