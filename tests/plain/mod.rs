//! A plain socketioxide server (no chatroom code) and a raw Engine.IO client over WebSocket,
//! for the tests of our copies of engineioxide and socketioxide (`vendor/README.md`).

use futures::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Serves `layer` (a socketioxide layer) on a free port of 127.0.0.1.
pub async fn serve(layer: socketioxide::layer::SocketIoLayer) -> SocketAddr {
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Opens a WebSocket session and connects it to the namespace `/`.
pub async fn connect(addr: SocketAddr) -> Ws {
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with("0{"), "Engine.IO open");
    ws.send(Message::text("40")).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with("40{"), "connect to /");
    ws
}

/// The next text frame that is not an Engine.IO ping.
pub async fn next_text(ws: &mut Ws) -> String {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .expect("the socket is open")
            .expect("a good frame");
        if let Message::Text(t) = msg {
            // Pings are answered by nobody here and not part of what is tested.
            if t.as_str() != "2" {
                return t.to_string();
            }
        }
    }
}
