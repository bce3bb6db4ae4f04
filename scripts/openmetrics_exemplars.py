"""Validate OpenMetrics text with the reference parser and list its exemplars.

Reads an exposition on stdin, parses it with prometheus_client's OpenMetrics parser
(strict: it raises on anything the spec forbids, including a missing `# EOF`), and prints
one JSON array of {"sample", "labels", "exemplar"} objects. Exit status 1 and the parser's
message on stderr if the text is not valid OpenMetrics. Used by the telemetry crate's tests.
"""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def main() -> int:
    text = sys.stdin.read()
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as error:  # the parser raises ValueError and friends
        print(f"invalid OpenMetrics: {error}", file=sys.stderr)
        return 1
    found = []
    for family in families:
        for sample in family.samples:
            if sample.exemplar is not None:
                found.append(
                    {
                        "family": family.name,
                        "type": family.type,
                        "unit": family.unit,
                        "sample": sample.name,
                        "labels": sample.labels,
                        "exemplar": sample.exemplar.labels,
                    }
                )
    json.dump(found, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
