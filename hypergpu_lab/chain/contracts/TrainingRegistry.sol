// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title TrainingRegistry
/// @notice One entry per federated training session: who coordinates it and what it trains.
/// @dev Session ids are chosen by the caller (the Python recorder picks one per run and keeps it in its
///      outbox, so a restarted recorder finds its own session again), but only inside the caller's own
///      namespace: the id's first 20 bytes must be the caller's address. Nobody can open, and so squat,
///      an id another account will use, even after seeing it in the mempool (the same rule as the
///      "salt starts with the caller" of CREATE2 factories).
///      No counter is shared between sessions: nothing one account does can make another's call revert.
contract TrainingRegistry {
    enum Status {
        None,
        Active,
        Completed
    }

    struct Session {
        address coordinator;
        Status status;
        uint64 startedAt;
        uint64 completedAt;
        bytes32 modelHash;
        bytes32 configHash;
        string datasetId;
    }

    mapping(bytes32 sessionId => Session) private _sessions;

    event SessionStarted(
        bytes32 indexed sessionId, address indexed coordinator, bytes32 modelHash, string datasetId, bytes32 configHash
    );
    event SessionCompleted(bytes32 indexed sessionId, address indexed coordinator);

    error SessionIdNotOwned(bytes32 sessionId, address caller);
    error SessionExists(bytes32 sessionId);
    error UnknownSession(bytes32 sessionId);
    error NotCoordinator(bytes32 sessionId, address caller);
    error SessionNotActive(bytes32 sessionId);

    /// @notice Open a session; the caller becomes its coordinator, the only account that may record its rounds.
    /// @param sessionId The caller's address (20 bytes) followed by 12 bytes of the caller's choosing.
    function startSession(bytes32 sessionId, bytes32 modelHash, string calldata datasetId, bytes32 configHash)
        external
    {
        if (address(bytes20(sessionId)) != msg.sender) revert SessionIdNotOwned(sessionId, msg.sender);
        if (_sessions[sessionId].status != Status.None) revert SessionExists(sessionId);
        _sessions[sessionId] = Session({
            coordinator: msg.sender,
            status: Status.Active,
            startedAt: uint64(block.timestamp),
            completedAt: 0,
            modelHash: modelHash,
            configHash: configHash,
            datasetId: datasetId
        });
        emit SessionStarted(sessionId, msg.sender, modelHash, datasetId, configHash);
    }

    /// @notice Close a session: no further rounds can be recorded (already funded rewards stay claimable).
    function completeSession(bytes32 sessionId) external {
        Session storage s = _sessions[sessionId];
        if (s.status == Status.None) revert UnknownSession(sessionId);
        if (s.coordinator != msg.sender) revert NotCoordinator(sessionId, msg.sender);
        if (s.status != Status.Active) revert SessionNotActive(sessionId);
        s.status = Status.Completed;
        s.completedAt = uint64(block.timestamp);
        emit SessionCompleted(sessionId, msg.sender);
    }

    function getSession(bytes32 sessionId) external view returns (Session memory) {
        return _sessions[sessionId];
    }

    /// @return The session's coordinator, or the zero address for an unknown session.
    function coordinatorOf(bytes32 sessionId) external view returns (address) {
        return _sessions[sessionId].coordinator;
    }

    function isActive(bytes32 sessionId) external view returns (bool) {
        return _sessions[sessionId].status == Status.Active;
    }

    /// @notice Reverts unless `caller` coordinates the active session: the one check every write makes.
    /// @dev One external call instead of two (coordinatorOf + isActive) on every recorded round.
    function checkCoordinator(bytes32 sessionId, address caller) external view {
        Session storage s = _sessions[sessionId];
        if (s.coordinator != caller) revert NotCoordinator(sessionId, caller);
        if (s.status != Status.Active) revert SessionNotActive(sessionId);
    }
}
