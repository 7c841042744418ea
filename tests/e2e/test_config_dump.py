"""`jobexec config` as an operator runs it: URLs with tricky credentials and secret-looking Kafka
properties are masked, ordinary values shown."""

from __future__ import annotations

from jobexec.testing.config_files import ConfigFiles
from jobexec.testing.processes import Cli

SECRETS = ("S3cretA", "pa/ss", "PEMBODY", "OAUTHSEC", "Tok3n", "SmtpPw")


def test_given_tricky_credentials_when_the_config_is_dumped_then_no_secret_is_printed(
    cli: Cli, config_files: ConfigFiles
) -> None:
    env = config_files.write(
        {
            "configs.celery.broker-url": "amqp://me@corp.test:S3cretA@rabbit//",
            "configs.jobDb.url": "postgresql+psycopg://u:pa/ss@db/jobs",
            "configs.kafka.properties.ssl.key.pem": "-----BEGIN PRIVATE KEY-----PEMBODY",
            "configs.kafka.properties.sasl.oauthbearer.config": "clientSecret=OAUTHSEC",
            "configs.executors.http.allowed-hosts": "api.test",
            "configs.kafka.bootstrap-servers": "kafka:9092?passwd=Tok3n",
        },
        {"secrets.smtp.password": "SmtpPw"},
    )

    done = cli.run("config", env=env)

    assert done.returncode == 0, done.stderr
    for secret in SECRETS:
        assert secret not in done.stdout + done.stderr, secret
    lines = set(done.stdout.splitlines())
    assert "configs.celery.broker-url=amqp://me@corp.test:***@rabbit//" in lines
    assert "configs.jobDb.url=postgresql+psycopg://u:***@db/jobs" in lines
    assert "kafka.ssl.key.pem=***" in lines and "kafka.sasl.oauthbearer.config=***" in lines
    assert "configs.executors.http.allowed-hosts=api.test" in lines
