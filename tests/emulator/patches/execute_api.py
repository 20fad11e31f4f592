"""API Gateway HTTP API execution: requests to an API are routed to its Lambda integration.

moto hosts the apigatewayv2 management API only; calling an API's invoke URL
(`https://ID.execute-api.REGION.amazonaws.com/STAGE/PATH`) reaches nothing. The emulator
serves an API at

    {emulator}/_execute-api/{api-id}/{stage}/{path}      ($default stage: .../{api-id}/{path})

(the invoke URL with `https://ID.execute-api.REGION.amazonaws.com` replaced by
`{emulator}/_execute-api/ID`), and also at `{emulator}/{stage}/{path}` with the header
`Host: ID.execute-api.REGION.amazonaws.com`. What happens, as API Gateway does it:

1. the stage: the first path segment when it names a stage of the API, else `$default`;
   no such stage → 404 {"message":"Not Found"};
2. the route: "METHOD /path" with `{param}` and a final `{proxy+}`, `ANY`, most specific
   first, else `$default`; none → 404 {"message":"Not Found"};
3. authorization `AWS_IAM`: a SigV4 `Authorization` header for service `execute-api`,
   verified with the emulator's credentials (access key `test`, secret `test`, or an access
   key created in the emulator's IAM): missing → 403 {"message":"Forbidden"}; wrong
   signature, unknown key, other service or a date more than 5 minutes off → 403 with
   AWS's message. The caller's IAM permission (execute-api:Invoke) is not checked;
4. the integration's function must grant `lambda:InvokeFunction` to
   `apigateway.amazonaws.com` with a SourceArn matching
   `arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH` (the route's path;
   `$default` for the $default route); otherwise, and on any function error, 500
   {"message":"Internal Server Error"};
5. the function runs (lambda_invoke.py) with a payload format 2.0 event, and its result is
   the reply: `statusCode`/`headers`/`body`/`isBase64Encoded`/`cookies`, or, for any other
   JSON value, 200 with that JSON as an application/json body.
"""

import base64
import datetime
import fnmatch
import json
import re
import sys
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from . import lambda_invoke

PREFIX = "/_execute-api/"
HOST = re.compile(r"^(?P<api>[a-z0-9]+)\.execute-api\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(:\d+)?$")
TEST_CREDENTIALS = {"test": "test"}
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript",
              "application/x-www-form-urlencoded", "+json", "+xml")

FORBIDDEN = "Forbidden"
BAD_SIGNATURE = ("The request signature we calculated does not match the signature you provided. "
                 "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
BAD_TOKEN = "The security token included in the request is invalid."


class Reply(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _find_api(api_id: str, region: str | None) -> tuple[Any, str, str]:
    from moto.apigatewayv2.models import apigatewayv2_backends

    for account, regions in dict.items(apigatewayv2_backends):
        for name, backend in dict.items(regions):
            if (region is None or name == region) and api_id in backend.apis:
                return backend.apis[api_id], account, name
    raise Reply(404, "Not Found")


def _segments_match(pattern: str, path: str) -> tuple[dict[str, str], tuple[int, int]] | None:
    """Path parameters and a specificity score if the route path `pattern` matches `path`."""
    want = [s for s in pattern.strip("/").split("/")] if pattern.strip("/") else []
    got = [s for s in path.strip("/").split("/")] if path.strip("/") else []
    params: dict[str, str] = {}
    literal = 0
    for i, seg in enumerate(want):
        greedy = re.fullmatch(r"\{(\w+)\+\}", seg)
        if greedy:
            if i != len(want) - 1 or len(got) <= i:
                return None
            params[greedy.group(1)] = "/".join(got[i:])
            return params, (literal, 0)
        if i >= len(got):
            return None
        var = re.fullmatch(r"\{(\w+)\}", seg)
        if var:
            params[var.group(1)] = unquote(got[i])
        elif seg != got[i]:
            return None
        else:
            literal += 1
    if len(got) != len(want):
        return None
    return params, (literal, 1)


def _route(api: Any, method: str, path: str) -> tuple[Any, dict[str, str]]:
    best, best_score, best_params = None, None, {}
    default = None
    for route in api.routes.values():
        key = route.route_key
        if key == "$default":
            default = route
            continue
        route_method, _, route_path = key.partition(" ")
        if route_method not in (method, "ANY"):
            continue
        matched = _segments_match(route_path, path)
        if matched is None:
            continue
        params, (literal, exact) = matched
        score = (literal, exact, route_method == method)
        if best_score is None or score > best_score:
            best, best_score, best_params = route, score, params
    if best is not None:
        return best, best_params
    if default is not None:
        return default, {}
    raise Reply(404, "Not Found")


def _secret(access_key: str, account: str) -> tuple[str, str] | None:
    """(secret, user ARN) of an access key the emulator knows."""
    if access_key in TEST_CREDENTIALS:
        return TEST_CREDENTIALS[access_key], f"arn:aws:iam::{account}:root"
    from moto.iam.models import iam_backends

    for acct, partitions in dict.items(iam_backends):
        for backend in dict.values(partitions):
            for user in backend.users.values():
                for key in user.access_keys:
                    if key.access_key_id == access_key and key.status == "Active":
                        return key.secret_access_key, user.arn
    return None


AUTH = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]+)\s*$"
)


def verify_sigv4(method: str, url: str, headers: dict[str, str], body: bytes, account: str) -> dict[str, Any]:
    """The caller's identity (requestContext.authorizer.iam) if the request is signed for
    execute-api with a key the emulator knows; raises Reply(403, ...) otherwise."""
    lower = {k.lower(): v for k, v in headers.items()}
    auth = lower.get("authorization")
    if not auth:
        raise Reply(403, FORBIDDEN)
    m = AUTH.match(auth)
    if not m:
        raise Reply(403, f"Authorization header requires 'Credential' parameter. Authorization header requires "
                         f"'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. "
                         f"Authorization=AWS4-HMAC-SHA256")
    if m["service"] != "execute-api":
        raise Reply(403, f"Credential should be scoped to correct service: 'execute-api'. ")
    found = _secret(m["key"], account)
    if found is None:
        raise Reply(403, BAD_TOKEN)
    secret, user_arn = found
    amz_date = lower.get("x-amz-date", "")
    try:
        signed_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        raise Reply(403, FORBIDDEN) from None
    now = datetime.datetime.now(datetime.timezone.utc)
    if abs((now - signed_at).total_seconds()) > 300:
        stamp = lambda t: t.strftime("%Y%m%dT%H%M%SZ")  # noqa: E731
        raise Reply(403, f"Signature expired: {amz_date} is now earlier than "
                         f"{stamp(now - datetime.timedelta(minutes=5))} ({stamp(now)} - 5 min.)")
    signed = m["signed"].split(";")
    if "host" not in signed or any(h not in lower for h in signed):
        raise Reply(403, BAD_SIGNATURE)
    request = AWSRequest(method=method, url=url, data=body, headers={h: lower[h] for h in signed})
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(m["key"], secret, lower.get("x-amz-security-token")), "execute-api", m["region"])

    def headers_to_sign(req: AWSRequest) -> HTTPHeaders:
        out = HTTPHeaders()
        for name in signed:
            out[name] = lower[name]
        return out

    signer.headers_to_sign = headers_to_sign
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if expected != m["signature"]:
        raise Reply(403, BAD_SIGNATURE)
    return {
        "accessKey": m["key"], "accountId": account, "callerId": account if user_arn.endswith(":root") else m["key"],
        "cognitoIdentity": None, "principalOrgId": None, "userArn": user_arn,
        "userId": account if user_arn.endswith(":root") else m["key"],
    }


def _function_of(integration: Any) -> str:
    uri = integration.integration_uri or ""
    match = re.search(r"functions/(?P<arn>arn:[^/]+)/invocations$", uri)
    return match["arn"] if match else uri


def _permitted(fn: Any, source_arn: str) -> bool:
    for st in list(fn.policy.statements):
        if st.get("Effect", "Allow") != "Allow":
            continue
        actions = st.get("Action")
        actions = actions if isinstance(actions, list) else [actions]
        if not any(a in ("lambda:InvokeFunction", "lambda:*", "*") for a in actions):
            continue
        principal = st.get("Principal")
        service = principal.get("Service") if isinstance(principal, dict) else principal
        if service not in ("apigateway.amazonaws.com", "*"):
            continue
        conditions = st.get("Condition") or {}
        pattern = None
        for op in ("ArnLike", "ArnEquals", "StringLike", "StringEquals"):
            for key, value in (conditions.get(op) or {}).items():
                if key.lower() == "aws:sourcearn":
                    pattern = value
        if pattern is None or fnmatch.fnmatchcase(source_arn, pattern):
            return True
    return False


def _event(api: Any, account: str, region: str, stage: str, route: Any, params: dict[str, str], method: str,
           raw_path: str, query: str, headers: dict[str, str], body: bytes, source_ip: str,
           identity: dict[str, Any] | None) -> dict[str, Any]:
    merged: dict[str, str] = {}
    for k, v in headers.items():
        k = k.lower()
        merged[k] = f"{merged[k]},{v}" if k in merged else v
    host = f"{api.api_id}.execute-api.{region}.amazonaws.com"
    merged.update({"host": host, "x-forwarded-proto": "https", "x-forwarded-port": "443",
                   "x-forwarded-for": source_ip,
                   "x-amzn-trace-id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"})
    now = datetime.datetime.now(datetime.timezone.utc)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": merged,
    }
    cookies = [c.strip() for c in merged.get("cookie", "").split(";") if c.strip()]
    if cookies:
        event["cookies"] = cookies
    if query:
        qs: dict[str, str] = {}
        for k, v in parse_qsl(query, keep_blank_values=True):
            qs[k] = f"{qs[k]},{v}" if k in qs else v
        event["queryStringParameters"] = qs
    context: dict[str, Any] = {
        "accountId": account,
        "apiId": api.api_id,
        "domainName": host,
        "domainPrefix": api.api_id,
        "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                 "userAgent": merged.get("user-agent", "")},
        "requestId": base64.b32encode(uuid.uuid4().bytes)[:16].decode(),
        "routeKey": route.route_key,
        "stage": stage,
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if identity is not None:
        context["authorizer"] = {"iam": identity}
    event["requestContext"] = context
    if body:
        ctype = merged.get("content-type", "").lower()
        if any(t in ctype for t in TEXT_TYPES):
            try:
                event["body"], event["isBase64Encoded"] = body.decode("utf-8"), False
            except UnicodeDecodeError:
                event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        else:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    else:
        event["isBase64Encoded"] = False
    if params:
        event["pathParameters"] = params
    stage_obj = api.stages.get(stage)
    variables = getattr(stage_obj, "stage_variables", None)
    if variables:
        event["stageVariables"] = variables
    return event


def _response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Maps a payload format 2.0 function result to the HTTP reply."""
    if isinstance(result, dict) and "statusCode" in result:
        try:
            status = int(result["statusCode"])
        except (TypeError, ValueError):
            raise Reply(500, "Internal Server Error") from None
        headers = [(k, str(v)) for k, v in (result.get("headers") or {}).items()]
        for cookie in result.get("cookies") or []:
            headers.append(("Set-Cookie", cookie))
        body = result.get("body")
        if body is None:
            data = b""
        elif not isinstance(body, str):
            data = json.dumps(body).encode()
        elif result.get("isBase64Encoded"):
            data = base64.b64decode(body)
        else:
            data = body.encode()
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", "application/json"))
        return status, headers, data
    return 200, [("Content-Type", "application/json")], json.dumps(result).encode()


def _log(message: str) -> None:
    sys.stderr.write(f"execute-api: {message}\n")


def execute(environ: dict[str, Any], api_id: str, region: str | None, rest: str) -> tuple[int, list[tuple[str, str]], bytes]:
    from moto.awslambda.models import lambda_backends

    api, account, region = _find_api(api_id, region)
    if (api.protocol_type or "HTTP") != "HTTP":
        raise Reply(404, "Not Found")
    segments = rest.split("/", 1) if rest else [""]
    if segments[0] and segments[0] in api.stages and segments[0] != "$default":
        stage, path = segments[0], "/" + (segments[1] if len(segments) > 1 else "")
    elif "$default" in api.stages:
        stage, path = "$default", "/" + rest
    else:
        raise Reply(404, "Not Found")
    method = environ["REQUEST_METHOD"].upper()
    route, params = _route(api, method, path)
    raw_path = "/" + rest  # with the stage, as API Gateway's rawPath

    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = environ["CONTENT_TYPE"]
    if environ.get("CONTENT_LENGTH"):
        headers["Content-Length"] = environ["CONTENT_LENGTH"]
    query = environ.get("QUERY_STRING", "")

    identity = None
    if (route.authorization_type or "NONE") == "AWS_IAM":
        raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
        scheme = environ.get("wsgi.url_scheme", "http")
        url = f"{scheme}://{headers.get('Host', 'localhost')}{raw_uri}"
        identity = verify_sigv4(method, url, headers, body, account)

    integration_id = (route.target or "").removeprefix("integrations/")
    integration = api.integrations.get(integration_id)
    if integration is None:
        _log(f"route {route.route_key!r} has no integration")
        raise Reply(500, "Internal Server Error")
    if (integration.integration_type or "").upper() != "AWS_PROXY" or ":lambda:" not in (integration.integration_uri or ""):
        _log(f"integration {integration_id} is not a Lambda proxy integration (not emulated)")
        raise Reply(500, "Internal Server Error")
    if (integration.payload_format_version or "1.0") != "2.0":
        _log(f"integration {integration_id}: payload format {integration.payload_format_version} is not emulated")
        raise Reply(500, "Internal Server Error")
    function_arn = _function_of(integration)
    fn_account = function_arn.split(":")[4] if function_arn.count(":") >= 6 else account
    fn_region = function_arn.split(":")[3] if function_arn.count(":") >= 6 else region
    try:
        fn = lambda_backends[fn_account][fn_region].get_function(function_arn)
    except Exception:
        _log(f"no function {function_arn}")
        raise Reply(500, "Internal Server Error") from None
    route_path = "$default" if route.route_key == "$default" else f"{method}{route.route_key.partition(' ')[2]}"
    source_arn = f"arn:aws:execute-api:{region}:{account}:{api.api_id}/{stage}/{route_path}"
    if not _permitted(fn, source_arn):
        _log(f"{fn.function_name} has no permission for apigateway.amazonaws.com from {source_arn}")
        raise Reply(500, "Internal Server Error")
    if not lambda_invoke.runs_here(fn):
        _log(f"{fn.function_name}: only python3.x zip functions run in the emulator")
        raise Reply(500, "Internal Server Error")
    try:
        lambda_invoke.check_invocable(fn)
    except Exception as error:
        _log(f"{fn.function_name}: {error}")
        raise Reply(500, "Internal Server Error") from None
    source_ip = environ.get("REMOTE_ADDR", "127.0.0.1")
    event = _event(api, account, region, stage, route, params, method, raw_path, query, headers, body, source_ip, identity)
    outcome, log = lambda_invoke.invoke_sync(fn, event)
    if "error" in outcome:
        _log(f"{fn.function_name} failed: {json.dumps(outcome['error'])}")
        raise Reply(500, "Internal Server Error")
    return _response(outcome["ok"])


class ExecuteApi:
    """WSGI middleware serving HTTP APIs' execution; everything else goes to `app`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        host = HOST.match(environ.get("HTTP_HOST", ""))
        if path.startswith(PREFIX):
            api_id, _, rest = path[len(PREFIX):].partition("/")
            region = None
        elif host:
            api_id, region, rest = host["api"], host["region"], path.lstrip("/")
        else:
            return self.app(environ, start_response)
        apigw_id = str(uuid.uuid4())
        try:
            status, headers, data = execute(environ, api_id, region, rest)
        except Reply as reply:
            status, headers = reply.status, [("Content-Type", "application/json")]
            data = json.dumps({"message": reply.message}).encode()
            if reply.status in (403,):
                headers.append(("x-amzn-ErrorType", "ForbiddenException" if reply.message == FORBIDDEN
                                else "InvalidSignatureException"))
        headers = [h for h in headers if h[0].lower() != "content-length"]
        headers += [("Content-Length", str(len(data))), ("Apigw-Requestid", apigw_id)]
        start_response(f"{status} {_reason(status)}", headers)
        return [data]


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
