//! Issuing and verifying the service's JWTs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::{JwtAlgorithm, Settings};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Access,
    Refresh,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    /// Unique per token: what revocation records.
    pub jti: String,
    pub token_type: TokenKind,
}

impl Claims {
    pub fn user_id(&self) -> Option<i64> {
        self.sub.parse().ok()
    }

    pub fn expires_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.exp, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed, badly signed or expired: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("expected an {expected:?} token")]
    WrongKind { expected: TokenKind },
}

#[derive(Clone)]
pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    algorithm: Algorithm,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl TokenService {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let secret = settings.secret_key.expose().as_bytes();
        Ok(Self {
            encoding: EncodingKey::from_secret(secret)?,
            decoding: DecodingKey::from_secret(secret)?,
            algorithm: match settings.algorithm {
                JwtAlgorithm::HS256 => Algorithm::HS256,
                JwtAlgorithm::HS384 => Algorithm::HS384,
                JwtAlgorithm::HS512 => Algorithm::HS512,
            },
            access_ttl: settings.access_token_expire,
            refresh_ttl: settings.refresh_token_expire,
        })
    }

    pub fn issue(&self, user_id: i64, kind: TokenKind) -> Result<String, TokenError> {
        let ttl = match kind {
            TokenKind::Access => self.access_ttl,
            TokenKind::Refresh => self.refresh_ttl,
        };
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            iat: now,
            exp: now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
            jti: uuid::Uuid::new_v4().simple().to_string(),
            token_type: kind,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(self.algorithm),
            &claims,
            &self.encoding,
        )?)
    }

    /// Checks signature, algorithm, expiry and kind. Revocation is checked by the caller.
    pub fn verify(&self, token: &str, expected: TokenKind) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(self.algorithm);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)?.claims;
        if claims.token_type != expected {
            return Err(TokenError::WrongKind { expected });
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(secret: &str) -> TokenService {
        let mut settings = Settings::from_lookup(|_| None).unwrap();
        settings.secret_key = secret.into();
        TokenService::new(&settings).unwrap()
    }

    #[test]
    fn round_trip_and_kind_check() {
        let svc = service("s3cret");
        let token = svc.issue(7, TokenKind::Access).unwrap();
        let claims = svc.verify(&token, TokenKind::Access).unwrap();
        assert_eq!(claims.user_id(), Some(7));
        assert!(matches!(
            svc.verify(&token, TokenKind::Refresh),
            Err(TokenError::WrongKind { .. })
        ));
    }

    #[test]
    fn another_key_is_refused() {
        let token = service("one").issue(1, TokenKind::Access).unwrap();
        assert!(service("two").verify(&token, TokenKind::Access).is_err());
    }

    #[test]
    fn unique_ids_per_token() {
        let svc = service("k");
        let a = svc.verify(&svc.issue(1, TokenKind::Access).unwrap(), TokenKind::Access);
        let b = svc.verify(&svc.issue(1, TokenKind::Access).unwrap(), TokenKind::Access);
        assert_ne!(a.unwrap().jti, b.unwrap().jti);
    }
}
