// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {TrainingRegistry} from "./TrainingRegistry.sol";
import {ContributionTracker} from "./ContributionTracker.sol";

/// @title RewardDistributor
/// @notice Splits each recorded round's reward pool pro rata by score; nodes withdraw their own balance.
/// @dev Pull payments: funding only credits balances; tokens move to a node only when that node calls
///      claim(), which pays msg.sender and nobody else. claim() follows checks-effects-interactions (the
///      balance is zeroed before the transfer) and both external-calling functions are nonReentrant, so a
///      token with transfer hooks cannot re-enter to be paid twice.
///
///      Rounding: share_i = floor(pool * score_i / totalScore). The remainder ("dust", fewer token base
///      units than there are nodes) is never taken from the funder: fundRound pulls exactly the sum of
///      the shares, so no token is stranded in this contract.
contract RewardDistributor is ReentrancyGuard {
    using SafeERC20 for IERC20;

    IERC20 public immutable token;
    TrainingRegistry public immutable registry;
    ContributionTracker public immutable tracker;

    mapping(address node => uint256) public claimable;
    mapping(address node => uint256) public claimed;
    mapping(bytes32 sessionId => mapping(uint256 round => bool)) public isFunded;

    event RoundFunded(
        bytes32 indexed sessionId, uint256 indexed round, address indexed funder, uint256 pool, uint256 distributed
    );
    event RewardCredited(bytes32 indexed sessionId, uint256 indexed round, address indexed node, uint256 amount);
    event Claimed(address indexed node, uint256 amount);

    error NotCoordinator(bytes32 sessionId, address caller);
    error RoundNotRecorded(bytes32 sessionId, uint256 round);
    error RoundAlreadyFunded(bytes32 sessionId, uint256 round);
    error ZeroPool();
    error NothingToDistribute(bytes32 sessionId, uint256 round);
    error NothingToClaim(address node);

    constructor(IERC20 token_, ContributionTracker tracker_) {
        token = token_;
        tracker = tracker_;
        registry = tracker_.registry();
    }

    /// @notice Credit `pool` tokens to a recorded round's nodes pro rata by score; pulls the credited sum
    ///         from the caller (approve this contract first). Only the session's coordinator, once a round.
    function fundRound(bytes32 sessionId, uint256 round, uint256 pool)
        external
        nonReentrant
        returns (uint256 distributed)
    {
        if (registry.coordinatorOf(sessionId) != msg.sender) revert NotCoordinator(sessionId, msg.sender);
        if (!tracker.isRecorded(sessionId, round)) revert RoundNotRecorded(sessionId, round);
        if (isFunded[sessionId][round]) revert RoundAlreadyFunded(sessionId, round);
        if (pool == 0) revert ZeroPool();
        (address[] memory nodes, uint256[] memory scores, uint256 total) = tracker.roundContributions(sessionId, round);
        if (total == 0) revert NothingToDistribute(sessionId, round);
        isFunded[sessionId][round] = true;
        for (uint256 i = 0; i < nodes.length; ++i) {
            uint256 share = Math.mulDiv(pool, scores[i], total);
            if (share == 0) continue;
            claimable[nodes[i]] += share;
            distributed += share;
            emit RewardCredited(sessionId, round, nodes[i], share);
        }
        emit RoundFunded(sessionId, round, msg.sender, pool, distributed);
        token.safeTransferFrom(msg.sender, address(this), distributed);
    }

    /// @notice Withdraw the caller's whole balance. Reverts with NothingToClaim when it is zero.
    function claim() external nonReentrant returns (uint256 amount) {
        amount = claimable[msg.sender];
        if (amount == 0) revert NothingToClaim(msg.sender);
        claimable[msg.sender] = 0;
        claimed[msg.sender] += amount;
        emit Claimed(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }
}
