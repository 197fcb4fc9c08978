"""The harness's exception tree. Errors of docker, HTTP and Toxiproxy are
translated into these at the boundary, with the service, link, file or
command named, and what to do.

    HarnessError
    ├── TopologyError        a malformed topology file or model (names file and key)
    ├── SetupError           a missing binary or package (names what to install)
    ├── WaitTimeout          something polled for never came (what, last seen, hint, log tail)
    ├── ServiceError         a service failed to start, got unhealthy or died
    │   └── ReadinessTimeout a service never got healthy (also a WaitTimeout)
    ├── ToxiproxyError       the Toxiproxy server or API failed (names proxy/toxic)
    ├── FaultError           an unknown fault, bad parameters, or a failed apply/revert
    ├── LoadError            Locust failed to start or run
    ├── ReportError          a folder that holds no saved run
    └── SafetyError          an address outside 127.0.0.1 and the run's own networks
"""


class HarnessError(Exception):
    """Root of every error the harness raises on purpose."""


class TopologyError(HarnessError):
    pass


class SetupError(HarnessError):
    pass


class WaitTimeout(HarnessError):
    pass


class ServiceError(HarnessError):
    pass


class ReadinessTimeout(ServiceError, WaitTimeout):
    pass


class ToxiproxyError(HarnessError):
    pass


class FaultError(HarnessError):
    pass


class LoadError(HarnessError):
    pass


class ReportError(HarnessError):
    pass


class SafetyError(HarnessError):
    pass
