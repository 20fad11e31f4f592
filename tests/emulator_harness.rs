//! The test harness's own promises about the local emulator: its Kafka broker listens on the
//! address MSK GetBootstrapBrokers answers, and dies with the emulator (no broker outlives a
//! test); HTTP API invoke URLs map to the emulator's execute-api endpoint.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{Emulator, eventually};

fn listening(addr: &SocketAddr) -> bool {
    TcpStream::connect_timeout(addr, Duration::from_millis(300)).is_ok()
}

#[tokio::test]
async fn the_kafka_broker_is_the_clusters_address_and_dies_with_the_emulator() {
    let em = Emulator::start();
    let bootstrap = em.kafka_bootstrap();
    let addr: SocketAddr = bootstrap.parse().expect("host:port");
    assert!(
        addr.ip().is_loopback() && addr.port() == 9098,
        "{bootstrap}"
    );
    assert!(listening(&addr), "nothing listens on {bootstrap}");

    let kafka = aws_sdk_kafka::Client::new(&em.sdk().await);
    let serverless = aws_sdk_kafka::types::ServerlessRequest::builder()
        .vpc_configs(
            aws_sdk_kafka::types::VpcConfig::builder()
                .subnet_ids("subnet-1")
                .build(),
        )
        .build();
    let arn = kafka
        .create_cluster_v2()
        .cluster_name("harness")
        .serverless(serverless)
        .send()
        .await
        .unwrap()
        .cluster_arn
        .unwrap();
    let brokers = kafka
        .get_bootstrap_brokers()
        .cluster_arn(arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        brokers.bootstrap_broker_string_sasl_iam(),
        Some(bootstrap.as_str())
    );

    // Dropping the emulator kills the launcher (SIGKILL, no cleanup of its own): the broker
    // goes with it.
    drop(em);
    assert!(
        eventually(Duration::from_secs(10), || !listening(&addr)),
        "the broker on {bootstrap} outlived its emulator"
    );
}

#[test]
fn invoke_urls_map_to_the_emulators_execute_api_endpoint() {
    let em = Emulator::start();
    assert_eq!(
        em.execute_api_url(
            "https://a1b2c3.execute-api.ap-northeast-1.amazonaws.com/",
            "/messages"
        ),
        format!("{}/_execute-api/a1b2c3/messages", em.url)
    );
    assert_eq!(
        em.execute_api_url(
            "https://a1b2c3.execute-api.ap-northeast-1.amazonaws.com/prod",
            "/messages"
        ),
        format!("{}/_execute-api/a1b2c3/prod/messages", em.url)
    );
}
