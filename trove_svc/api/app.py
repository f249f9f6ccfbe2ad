"""The Falcon application factory: the only place the API's parts are put together."""

from __future__ import annotations

import falcon

from trove_svc.accounts import AccountService
from trove_svc.api import account_resources, errors, middleware, resources
from trove_svc.bus.client import Bus
from trove_svc.bus.messages import GuestClient, TaskManagerClient
from trove_svc.instances import InstanceService
from trove_svc.settings import Settings

P = "/v1.0/{project_id}"


def create_app(settings: Settings, bus: Bus) -> falcon.App[falcon.Request, falcon.Response]:
    """Build the API; the store must already be open (`trove_svc.store.db.open_store`)."""
    app: falcon.App[falcon.Request, falcon.Response] = falcon.App(
        middleware=[
            middleware.RequestId(),
            middleware.BodySizeLimit(settings.max_body_bytes),
            middleware.TokenAuth(settings.clock),
        ],
    )
    app.req_options.strip_url_path_trailing_slash = True
    errors.install(app)

    instances = InstanceService(settings, TaskManagerClient(bus))
    accounts = AccountService(
        instances, GuestClient(bus, settings.call_timeout), settings.new_secret
    )

    app.add_route("/", resources.Versions())
    app.add_route("/v1.0", resources.Version())
    app.add_route(f"{P}/flavors", resources.Flavors())
    app.add_route(f"{P}/flavors/{{flavor_id}}", resources.FlavorItem())
    app.add_route(f"{P}/datastores", resources.Datastores())
    app.add_route(f"{P}/datastores/versions/{{version_id}}", resources.DatastoreVersionById())
    app.add_route(f"{P}/datastores/versions/{{version_id}}/flavors", resources.VersionFlavors())
    app.add_route(
        f"{P}/datastores/versions/{{version_id}}/parameters", resources.VersionParameters()
    )
    app.add_route(
        f"{P}/datastores/versions/{{version_id}}/parameters/{{name}}", resources.VersionParameter()
    )
    app.add_route(
        f"{P}/datastores/{{datastore}}/versions/{{version}}/parameters",
        resources.NamedVersionParameters(),
    )
    app.add_route(
        f"{P}/datastores/{{datastore}}/versions/{{version}}/parameters/{{name}}",
        resources.NamedVersionParameter(),
    )
    app.add_route(f"{P}/limits", resources.Limits(settings))
    app.add_route(f"{P}/mgmt/instances", resources.MgmtInstances(instances))
    app.add_route(f"{P}/mgmt/instances/{{instance_id}}", resources.MgmtInstance(instances))
    app.add_route(f"{P}/datastores/{{datastore}}", resources.DatastoreItem())
    app.add_route(f"{P}/datastores/{{datastore}}/versions", resources.DatastoreVersions())
    app.add_route(
        f"{P}/datastores/{{datastore}}/versions/{{version}}", resources.DatastoreVersionItem()
    )
    instances_resource = resources.Instances(instances)
    app.add_route(f"{P}/instances", instances_resource)
    app.add_route(f"{P}/instances/detail", instances_resource, suffix="detail")
    app.add_route(f"{P}/instances/{{instance_id}}", resources.InstanceItem(instances))
    i = f"{P}/instances/{{instance_id}}"
    app.add_route(f"{i}/action", resources.InstanceAction(instances))
    app.add_route(f"{i}/databases", account_resources.Databases(accounts))
    app.add_route(f"{i}/databases/{{name}}", account_resources.Database(accounts))
    app.add_route(f"{i}/users", account_resources.Users(accounts))
    app.add_route(f"{i}/users/{{user}}", account_resources.User(accounts))
    app.add_route(f"{i}/users/{{user}}/databases", account_resources.UserAccess(accounts))
    app.add_route(
        f"{i}/users/{{user}}/databases/{{database}}", account_resources.UserAccessItem(accounts)
    )
    app.add_route(f"{i}/root", account_resources.Root(accounts))
    return app
